-- A wait step with wait_timeout fails, with its run, at the first sweep after the timeout; the
-- run leaves nothing live behind and a late event is not delivered to it.
begin;
\ir ../_helpers.psql
select plan(6);

select workflow.register_flow('{"slug": "w", "steps": [{"slug": "hold", "wait_for": "go", "wait_timeout": 30}]}') \g /dev/null
select workflow.start_flow('w', '{}', now => sw_test.t0()) as run_id \gset

select is(workflow._expire_waits(sw_test.at(29)), 0, 'nothing times out before the timeout');
select is((select status from workflow.runs where run_id = :'run_id'), 'started', 'the run still waits');
select workflow._sweep(sw_test.at(30), true) \g /dev/null
select is((select status from workflow.runs where run_id = :'run_id'), 'failed', 'the sweep failed the run at the timeout');
select matches((select error_message from workflow.step_states where run_id = :'run_id'),
    'timed out after 30 s', 'the step says it timed out');
select ok(sw_test.live_work(:'run_id') = 0 and not exists (select 1 from workflow.event_waits),
    'nothing of the run is left');
select is(workflow.send_event('go', :'run_id', '1', now => sw_test.at(31)) ->> 'status', 'kept',
    'a late event finds no waiter');

select * from finish();
rollback;
