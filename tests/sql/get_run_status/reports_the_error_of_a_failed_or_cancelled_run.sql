-- A failed run reports the failed step and its error, in the run and in the step; a cancelled run
-- is 'failed' in the Elixir library's terms, 'cancelled' in state, with the reason as its error and no
-- failed step.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide') as failed_run \gset
select workflow.start_flow('wide') as cancelled_run \gset
select count(*) from workflow.claim_tasks('default', 10, now => sw_test.t0()) \g /dev/null
select sw_test.task_id(:'failed_run', 'boom') as boom \gset
select workflow.fail_task(:boom, sw_test.attempt(:boom), 'kaboom', sw_test.at(1)) as outcome \gset
select is(:'outcome'::text, 'failed', 'boom failed on its only attempt');

select is(
    (select array[s ->> 'status', s ->> 'state', s ->> 'failed_step'] from workflow.get_run_status(:'failed_run') as s),
    array['failed', 'failed', 'boom'], 'the failed run names the failed step');
select matches(workflow.get_run_status(:'failed_run') ->> 'error', 'kaboom', 'and carries its error');
select matches(
    (select s ->> 'error' from jsonb_array_elements(workflow.get_run_status(:'failed_run') -> 'steps') as s where s ->> 'step' = 'boom'),
    'kaboom', 'the step reports its error too');

select workflow.cancel_workflow_run(:'cancelled_run', 'not needed any more') \g /dev/null
select is(
    (select array[s ->> 'status', s ->> 'state', s ->> 'error', s ->> 'failed_step'] from workflow.get_run_status(:'cancelled_run') as s),
    array['failed', 'cancelled', 'not needed any more', null], 'a cancelled run: failed, cancelled, the reason, no step');
select isnt(workflow.get_run_status(:'cancelled_run') ->> 'cancelled_at', null, 'with the time it was cancelled');

select * from finish();
rollback;
