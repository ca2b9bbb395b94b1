-- A run owned by a worker that deregisters fails at the next engine call (here start_flow,
-- through the sweep) with an error naming the owner; retry_failed_workflow records the owner of
-- the new run it starts.
begin;
\ir ../_helpers.psql
select plan(3);

select sw_test.setup_flow('local') \g /dev/null
select workflow.register_worker('exec1', now => sw_test.t0()) \g /dev/null
select workflow.start_flow('local', owner => 'exec1', now => sw_test.t0()) as run_id \gset
select workflow.deregister_worker('exec1', sw_test.at(2)) \g /dev/null
select workflow.register_worker('other', now => sw_test.at(3)) \g /dev/null
select workflow.start_flow('local', owner => 'other', now => sw_test.at(3)) \g /dev/null

select is((select status from workflow.runs where run_id = :'run_id'), 'failed', 'the owned run failed');
select matches((select error_message from workflow.runs where run_id = :'run_id'), '^owner exec1 is gone \(deregistered\)',
    'naming the owner and why');
select workflow.register_worker('exec2', now => sw_test.at(4)) \g /dev/null
select workflow.retry_failed_workflow(:'run_id', now => sw_test.at(5), owner => 'exec2') as new_run \gset
select is((select owner_worker_id from workflow.runs where run_id = :'new_run'), 'exec2',
    'a retry records the owner it is given');

select * from finish();
rollback;
