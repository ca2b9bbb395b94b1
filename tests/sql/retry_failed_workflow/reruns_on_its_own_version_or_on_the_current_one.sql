-- A retry runs on the failed run's own version by default. With on_current => true it runs on
-- the current version and carries over only completed steps whose definition is the same in
-- both versions and whose dependencies are carried over too; each is a step_reused event.
-- v1: a -> b -> c, a -> d; the run fails in b after a and d completed.
-- v2: a unchanged, d changed (timeout), b unchanged, c removed, x new after b.
begin;
\ir ../_helpers.psql
select plan(6);

select workflow.register_flow('{"slug": "f", "steps": [
    {"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed", "depends_on": ["a"], "max_attempts": 1},
    {"slug": "c", "execution": "distributed", "depends_on": ["b"]}, {"slug": "d", "execution": "distributed", "depends_on": ["a"]}]}') \g /dev/null
select workflow.start_flow('f', '{}', now => sw_test.t0()) as failed_run \gset
select workflow.complete_task(t.task_id, t.attempt, '{"a": 1}', sw_test.at(1))
from workflow.claim_tasks('default', now => sw_test.t0()) as t \g /dev/null
select count(*) from workflow.claim_tasks('default', now => sw_test.at(2)) \g /dev/null
select sw_test.complete(sw_test.task_id(:'failed_run', 'd'), '{"d": 1}', sw_test.at(3)) \g /dev/null
select workflow.fail_task(sw_test.task_id(:'failed_run', 'b'), 1, 'b broke', sw_test.at(4)) \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [
    {"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed", "depends_on": ["a"], "max_attempts": 1},
    {"slug": "x", "execution": "distributed", "depends_on": ["b"]}, {"slug": "d", "execution": "distributed", "depends_on": ["a"], "timeout": 9}]}') \g /dev/null

select workflow.retry_failed_workflow(:'failed_run') as own \gset
select is((workflow.get_run_status(:'own') ->> 'version')::integer, 1, 'by default the retry runs on the run''s own version');
select is(
    (select array_agg(step_slug || ':' || status order by step_slug) from workflow.step_states where run_id = :'own'),
    array['a:completed', 'b:started', 'c:created', 'd:completed'], 'with v1''s steps, a and d carried over');

select workflow.retry_failed_workflow(:'failed_run', on_current => true) as cur \gset
select is((workflow.get_run_status(:'cur') ->> 'version')::integer, 2, 'on_current runs on version 2');
select is(
    (select array_agg(step_slug || ':' || status order by step_slug) from workflow.step_states where run_id = :'cur'),
    array['a:completed', 'b:started', 'd:started', 'x:created'],
    'a is reused; d changed, so it runs again; b failed; x is new');
select is(
    (select array_agg(step_slug order by step_slug) from workflow.events where run_id = :'cur' and event = 'step_reused'),
    array['a'], 'the reused steps are recorded as step_reused events');
select is((select output from workflow.step_states where run_id = :'cur' and step_slug = 'a'), '{"a": 1}'::jsonb,
    'with their output');

select * from finish();
rollback;
