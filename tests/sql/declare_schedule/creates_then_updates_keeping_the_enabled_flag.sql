-- declare_schedule creates a schedule of a new name; for a known name it brings the definition
-- up to date (cron, input, time zone) but keeps the enabled flag an operator set, and a repeat
-- changes nothing. Bad input is refused with create_schedule's codes and stores nothing.
begin;
\ir ../_helpers.psql
select plan(7);

select sw_test.setup_flow('chain3') \g /dev/null
select is(workflow.declare_schedule('d', 'chain3', '@daily', now => sw_test.t0()), sw_test.at(86400),
    'a new name is created; its first tick is returned');
select workflow.update_schedule('d', enabled => false) \g /dev/null
select is(workflow.declare_schedule('d', 'chain3', '0 3 * * *', '{"n": 1}', now => sw_test.t0()), null::timestamptz,
    'a known name is updated; disabled, it has no next tick');
select is((select (s.cron, s.input, s.enabled)::text from workflow.schedules s where s.schedule_name = 'd'),
    ('0 3 * * *', '{"n": 1}'::jsonb, false)::text, 'the definition changed, the enabled flag did not');
select lives_ok($$select workflow.declare_schedule('d', 'chain3', '0 3 * * *', '{"n": 1}')$$, 'a repeat is fine');
select is((select count(*) from workflow.schedules), 1::bigint, 'still one schedule');
select throws_ok($$select workflow.declare_schedule('e', 'chain3', '61 * * * *')$$, 'WF027', null, 'a bad cron is refused');
select is((select count(*) from workflow.schedules where schedule_name = 'e'), 0::bigint, 'and nothing is stored');

select * from finish();
rollback;
