-- update_schedule: a new cron or time zone recomputes the next tick from now; a new input keeps
-- it; a bad value is refused and changes nothing; an unknown schedule is WF029.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.create_schedule('s', 'chain3', '@daily', now => sw_test.t0()) \g /dev/null
select is(workflow.update_schedule('s', input => '{"v": 2}', now => sw_test.at(60)), sw_test.at(86400),
    'a new input keeps the next tick');
select is(workflow.update_schedule('s', cron => '@hourly', now => sw_test.at(60)), sw_test.at(3600),
    'a new cron recomputes it from now');
select is(workflow.update_schedule('s', timezone => 'America/New_York', cron => '0 0 * * *', now => sw_test.at(60)),
    sw_test.at(5 * 3600), 'a new time zone too (midnight in New York is 05:00 UTC in January)');
select throws_ok($$select workflow.update_schedule('s', cron => '* * * * mon-xyz')$$, 'WF027', null, 'a bad cron is refused');
select is((select cron || ' ' || input::text from workflow.schedules where schedule_name = 's'), '0 0 * * * {"v": 2}',
    'and changed nothing');
select throws_ok($$select workflow.update_schedule('nope', enabled => false)$$, 'WF029', null, 'an unknown schedule');

select * from finish();
rollback;
