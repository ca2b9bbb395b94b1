-- A wait step holds no task and no message; send_event with the run's key completes it with the
-- payload, the next step starts in the same transaction, and the run completes.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.register_flow('{"slug": "w", "steps": [
    {"slug": "draft", "execution": "distributed"},
    {"slug": "approval", "depends_on": ["draft"], "wait_for": "approved"},
    {"slug": "publish", "depends_on": ["approval"], "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('w', '{}', now => sw_test.t0()) as run_id \gset
select sw_test.drain('default') \g /dev/null

select is((select status from workflow.step_states where run_id = :'run_id' and step_slug = 'approval'),
    'started', 'the wait step has started');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'approval'),
    0::bigint, 'it has no task');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing of the run is claimable while it waits');
select is((select event_key from workflow.event_waits where run_id = :'run_id'),
    :'run_id'::text, 'it waits under the run id as key');

select is(workflow.send_event('approved', :'run_id', '{"ok": 1}', now => sw_test.at(1)) ->> 'status',
    'delivered', 'the event is delivered');
select is((select output from workflow.step_states where run_id = :'run_id' and step_slug = 'approval'),
    '{"ok": 1}'::jsonb, 'the payload is the step output');
select is((select count(*) from workflow.event_waits), 0::bigint, 'the wait is gone');
select is(sw_test.drain('default', now => sw_test.at(2)), 1, 'the next step was started by the event');
select is((select status from workflow.runs where run_id = :'run_id'), 'completed', 'the run completes');

select * from finish();
rollback;
