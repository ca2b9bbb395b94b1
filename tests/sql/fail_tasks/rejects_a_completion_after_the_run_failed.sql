-- A worker still running a task of a run that failed meanwhile finds out at its next call:
-- its completion is not accepted, its failure is stale, its lease is not extended, and the
-- run's counters and output do not move.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', 2, now => sw_test.t0()) \gset
select sw_test.task_id(:'run_id', 'ok1') as ok1 \gset
select is(workflow.fail_task(sw_test.task_id(:'run_id', 'boom'), 1, 'kaboom', sw_test.at(1)), 'failed', 'boom fails the run');

select is(workflow.complete_task(:ok1, 1, '"late"', sw_test.at(2)), false, 'the completion of ok1 is not accepted');
select is(workflow.fail_task(:ok1, 1, 'late error', sw_test.at(2)), 'stale', 'a failure of ok1 is stale');
select is(workflow.extend_lease(:ok1, 1, 30, sw_test.at(2)), false, 'its lease is not extended');
select results_eq(
    format('select status, remaining_steps, output, error_message ~ %L from workflow.runs where run_id = %L', 'kaboom', :'run_id'),
    $$values ('failed', 4, null::jsonb, true)$$, 'the run is unchanged: failed with the first error, no output');
select results_eq(
    format('select output, error_message from workflow.tasks where task_id = %s', :ok1),
    $$values (null::jsonb, 'run failed')$$, 'the swept task keeps no late output');

select * from finish();
rollback;
