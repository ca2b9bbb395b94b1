-- The sweep works under workflow_worker: a claim made with the worker role marks a dead worker
-- released and claims its task as the next attempt; the part the role may not do (cancelling
-- a run past its deadline) is skipped without failing the claim. A reader's get_run_status
-- still answers (its role may not sweep at all).
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', timeout_seconds => 5, now => sw_test.t0()) as run_id \gset
select workflow.register_worker('w1', heartbeat_timeout_seconds => 10, now => sw_test.t0()) \g /dev/null
select task_id as a from workflow.claim_tasks('default', worker_id => 'w1', now => sw_test.t0()) \gset
grant usage on schema sw_test to workflow_worker, workflow_reader;
grant execute on all functions in schema sw_test to workflow_worker, workflow_reader;

set local role workflow_worker;
select results_eq(
    $$select task_id, attempt from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(11))$$,
    format('values (%s::bigint, 2)', :a), 'the worker role''s claim released the dead worker''s task');
select isnt((select released_at from workflow.workers where worker_id = 'w1'), null, 'and marked it released');
reset role;
select is((select status from workflow.runs where run_id = :'run_id'), 'started', 'the deadline was left to a role that may cancel');
set local role workflow_reader;
select is(workflow.get_run_status(:'run_id', sw_test.at(12)) ->> 'state', 'running', 'a reader still gets the status');
reset role;

select * from finish();
rollback;
