-- A due tick fires from the throttled sweep that claim_tasks runs, with no call of
-- fire_due_schedules: the worker's claim in the same call gets the new run's root task. A
-- disabled schedule fires nothing; enabling it recomputes the tick from then (no catch-up).
begin;
\ir ../_helpers.psql
select plan(5);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.create_schedule('hourly', 'chain3', '@hourly', now => sw_test.t0()) \g /dev/null
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(3601))), 1::bigint,
    'the claim fires the tick and claims its root task');
select is((select scheduled_for from workflow.runs where schedule_name = 'hourly'), sw_test.at(3600), 'the run records its tick');

select workflow.update_schedule('hourly', enabled => false, now => sw_test.at(3700)) \g /dev/null
select is(workflow.fire_due_schedules(sw_test.at(7300)), 0, 'a disabled schedule fires nothing');
select is(workflow.update_schedule('hourly', enabled => true, now => sw_test.at(3 * 3600 + 5)), sw_test.at(4 * 3600),
    'enabling recomputes the next tick from now');
select is(workflow.fire_due_schedules(sw_test.at(3 * 3600 + 10)), 0, 'and the ticks missed while disabled do not fire');

select * from finish();
rollback;
