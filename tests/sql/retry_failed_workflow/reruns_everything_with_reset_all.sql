-- reset_all (or skip_completed => false) runs every step again: nothing is carried over. Each
-- call starts another run; the failed run itself is not changed.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.register_flow('{"slug": "ab", "steps": [{"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed", "depends_on": ["a"], "max_attempts": 1}]}') \g /dev/null
select workflow.start_flow('ab', now => sw_test.t0()) as failed_run \gset
select workflow.complete_task(t.task_id, t.attempt, '{}', sw_test.at(1)) from workflow.claim_tasks('default', now => sw_test.t0()) as t \g /dev/null
select workflow.fail_task(t.task_id, t.attempt, 'nope', sw_test.at(2)) from workflow.claim_tasks('default', now => sw_test.at(2)) as t \g /dev/null

select workflow.retry_failed_workflow(:'failed_run', reset_all => true) as reset_run \gset
select workflow.retry_failed_workflow(:'failed_run', skip_completed => false) as full_run \gset
select is(
    (select array_agg(step_slug || ':' || status order by step_slug) from workflow.step_states where run_id = :'reset_run'),
    array['a:started', 'b:created'], 'reset_all starts from the first step');
select is(
    (select array_agg(step_slug || ':' || status order by step_slug) from workflow.step_states where run_id = :'full_run'),
    array['a:started', 'b:created'], 'so does skip_completed => false');
select is(sw_test.drain('default', now => sw_test.at(3)), 4, 'both runs execute both steps');
select is((select count(*) from workflow.runs where retry_of = :'failed_run' and status = 'completed'), 2::bigint,
    'two separate retries, both completed');
select is((select status from workflow.runs where run_id = :'failed_run'), 'failed', 'the failed run is left as it was');

select * from finish();
rollback;
