-- Retry with skip_completed: a new run linked to the failed one (retry_of), same input; steps that
-- completed in the failed run are carried over with their outputs and never run again; only the
-- failed step and its descendants run, starting from the carried-over outputs.
-- Flow: a -> b -> c and a -> d -> e; b fails after a, d and e completed.
begin;
\ir ../_helpers.psql
select plan(10);

select workflow.register_flow('{"slug": "branches", "steps": [
    {"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed", "depends_on": ["a"], "max_attempts": 1}, {"slug": "c", "execution": "distributed", "depends_on": ["b"]},
    {"slug": "d", "execution": "distributed", "depends_on": ["a"]}, {"slug": "e", "execution": "distributed", "depends_on": ["d"]}]}') \g /dev/null
select workflow.start_flow('branches', '{"order": 7}', now => sw_test.t0()) as failed_run \gset
select workflow.complete_task(t.task_id, t.attempt, '{"from": "a, first run"}', sw_test.at(1))
from workflow.claim_tasks('default', now => sw_test.t0()) as t \g /dev/null
select count(*) from workflow.claim_tasks('default', now => sw_test.at(2)) \g /dev/null
select sw_test.complete(sw_test.task_id(:'failed_run', 'd'), '{"from": "d, first run"}', sw_test.at(3)) \g /dev/null
select workflow.complete_task(t.task_id, t.attempt, '{"from": "e, first run"}', sw_test.at(4))
from workflow.claim_tasks('default', now => sw_test.at(4)) as t \g /dev/null
select workflow.fail_task(sw_test.task_id(:'failed_run', 'b'), 1, 'b broke', sw_test.at(5)) \g /dev/null
select is((select status from workflow.runs where run_id = :'failed_run'), 'failed', 'the first run failed in b');

select workflow.retry_failed_workflow(:'failed_run') as retry_run \gset
select is(
    (select array[retry_of::text, input::text, status] from workflow.runs where run_id = :'retry_run'),
    array[:'failed_run', '{"order": 7}', 'started'], 'the new run retries the failed one, with the same input');
select is(
    (select array_agg(step_slug || ':' || status order by step_slug) from workflow.step_states where run_id = :'retry_run'),
    array['a:completed', 'b:started', 'c:created', 'd:completed', 'e:completed'],
    'a, d and e are carried over as completed; b starts; c waits on b');
select is((select remaining_steps from workflow.runs where run_id = :'retry_run'), 2, 'two steps remain: b and c');

select task_id as b, attempt, input as b_input from workflow.claim_tasks('default', now => sw_test.at(10)) \gset
select is(:'b_input'::jsonb, '{"run": {"order": 7}, "a": {"from": "a, first run"}}'::jsonb,
    'b starts from a''s output of the failed run');
select is(workflow.complete_task(:b, :attempt, '{"from": "b, retry"}', sw_test.at(11)), true, 'b completes this time');
select is(sw_test.drain('default', now => sw_test.at(12)), 1, 'then only c runs');
select is((select array_agg(step_slug order by step_slug) from workflow.tasks where run_id = :'retry_run'),
    array['b', 'c'], 'the retry executed only the failed step and its descendant');
select is((select status from workflow.runs where run_id = :'retry_run'), 'completed', 'the retry completes');
select is((select output from workflow.runs where run_id = :'retry_run'),
    '{"c": {"step": "c"}, "e": {"from": "e, first run"}}'::jsonb,
    'its output has the new leaf output and the carried-over one');

select * from finish();
rollback;
