-- A worker still running a task of a cancelled run learns it at its next report: the lease
-- renewal is refused, the completion is not accepted (and counts for nothing), a failure report
-- is stale. The run stays cancelled and no dependent step starts.
begin;
\ir ../_helpers.psql
select plan(7);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as run_id \gset
select task_id as a, attempt from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select workflow.cancel_workflow_run(:'run_id') \g /dev/null

select is(workflow.extend_lease(:a, :attempt, 60, sw_test.at(1)), false, 'the lease renewal is refused: stop working');
select is(workflow.complete_task(:a, :attempt, '{"late": true}', sw_test.at(2)), false, 'the late completion is not accepted');
select is(workflow.fail_task(:a, :attempt, 'late failure', sw_test.at(3)), 'stale', 'a late failure report is stale');
select is(
    (select array[status, error_message] from workflow.runs where run_id = :'run_id'),
    array['failed', 'User requested cancellation'], 'the run stays cancelled, with the default reason');
select is((select remaining_steps from workflow.runs where run_id = :'run_id'), 3, 'the completion was not counted');
select is((select array_agg(status order by step_slug) from workflow.step_states where run_id = :'run_id'),
    array['failed', 'created', 'created'], 'the interrupted step is failed and no dependent step started');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing live was created by the late reports');

select * from finish();
rollback;
