-- trigger_schedule starts a run with the schedule's flow and input now, records the schedule but
-- no tick, and leaves the next tick alone; delete_schedule removes the schedule but not its runs.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.create_schedule('s', 'chain3', '@daily', '{"v": 1}', now => sw_test.t0()) \g /dev/null
select workflow.trigger_schedule('s', now => sw_test.at(10)) as run_id \gset
select is((select format('%s %s %s %s', schedule_name, coalesce(scheduled_for::text, '-'), input, status)
    from workflow.runs where run_id = :'run_id'), 's - {"v": 1} started', 'a run of the schedule, with no tick');
select is((select next_fire_at from workflow.schedules where schedule_name = 's'), sw_test.at(86400), 'the next tick is unchanged');
select throws_ok($$select workflow.trigger_schedule('nope')$$, 'WF029', null, 'an unknown schedule');
select is(workflow.delete_schedule('s'), true, 'delete removes it');
select is(workflow.delete_schedule('s'), false, 'a second delete finds nothing');
select is((select count(*) from workflow.runs where schedule_name = 's'), 1::bigint, 'its runs stay');

select * from finish();
rollback;
