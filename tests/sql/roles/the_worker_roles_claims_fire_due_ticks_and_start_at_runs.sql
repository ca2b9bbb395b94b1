-- A claim made with the worker role fires a due schedule tick and starts a due start_at run
-- (through workflow._fire_due, the sweep's SECURITY DEFINER part), so ticks do not depend on an
-- admin session; yet the role still may not start a run itself, and calling _fire_due by hand
-- with a clock in the future fires nothing that is not due by the real clock. A reader may not
-- call it at all. The real clock is used: _fire_due caps the injected one at it.
begin;
\ir ../_helpers.psql
select plan(7);

select sw_test.setup_flow('chain3') \g /dev/null
-- The start first: its own sweep must not fire the tick made due below.
select run_id as at_run from workflow.start_flow('chain3', start_at => clock_timestamp() + interval '1 hour') as run_id \gset
select workflow.create_schedule('due', 'chain3', '@hourly') \g /dev/null
select workflow.create_schedule('later', 'chain3', '@hourly') \g /dev/null
update workflow.schedules set next_fire_at = clock_timestamp() - interval '1 second' where schedule_name = 'due';
update workflow.schedules set next_fire_at = clock_timestamp() + interval '1 hour' where schedule_name = 'later';
update workflow.runs set start_at = clock_timestamp() - interval '1 second' where run_id = :'at_run';
-- The sweep is due (it last ran long ago).
update workflow.sweeps set swept_at = clock_timestamp() - interval '1 hour';

set local role workflow_worker;
select workflow.claim_tasks('default', 10, now => clock_timestamp()) \g /dev/null
reset role;
select is((select count(*) from workflow.runs where schedule_name = 'due'), 1::bigint,
    'the worker role''s claim fired the due tick');
select is((select status from workflow.runs where run_id = :'at_run'), 'started',
    'and started the due start_at run');
select is((select count(*) from workflow.runs where schedule_name = 'later'), 0::bigint,
    'a tick not due yet did not fire');

set local role workflow_worker;
select throws_ok($$select workflow.start_flow('chain3')$$, '42501', null,
    'the worker role still may not start a run');
select is((select fired_ticks from workflow._fire_due('infinity')), 0,
    '_fire_due by hand with a future clock fires nothing not due by the real clock');
reset role;
select is((select count(*) from workflow.runs where schedule_name = 'later'), 0::bigint,
    'the later schedule is still unfired');

set local role workflow_reader;
select throws_ok($$select * from workflow._fire_due(now())$$, '42501', null,
    'a reader may not call _fire_due');
reset role;

select * from finish();
rollback;
