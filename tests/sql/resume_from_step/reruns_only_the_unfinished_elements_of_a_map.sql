-- Resuming a failed run from its map step reuses the upstream output and the elements that
-- completed: only the failed elements get tasks with messages; the run then completes with every
-- element's output in order, linked to the old run with the reason recorded.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.register_flow('{"slug": "m", "steps": [
    {"slug": "src", "execution": "distributed"},
    {"slug": "each", "depends_on": ["src"], "type": "map", "execution": "distributed", "max_attempts": 1},
    {"slug": "join", "depends_on": ["each"], "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('m', '{}', now => sw_test.t0()) as old_run \gset
select workflow.claim_tasks('default', 1, now => sw_test.t0()) \g /dev/null
select sw_test.complete(sw_test.task_id(:'old_run', 'src'), '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]') \g /dev/null
select workflow.claim_tasks('default', 100, now => sw_test.t0()) \g /dev/null
-- Elements 3 and 7 fail (one attempt), the others complete with item * 10.
select count(*) from (
    select case when t.task_index in (3, 7)
        then workflow.fail_task(t.task_id, t.attempts_count, 'boom', now => sw_test.t0())::text
        else workflow.complete_task(t.task_id, t.attempts_count, to_jsonb((t.item #>> '{}')::integer * 10), sw_test.t0())::text end
    from workflow.tasks t where t.run_id = :'old_run' and t.step_slug = 'each' order by t.task_index in (3, 7), t.task_index
) as x \g /dev/null
select is((select status from workflow.runs where run_id = :'old_run'), 'failed', 'the old run failed');

select workflow.resume_from_step(:'old_run', 'each', 'elements 3 and 7 fixed', now => sw_test.at(1)) as new_run \gset
select is((select step_slug || ':' || status from workflow.step_states where run_id = :'new_run' and step_slug = 'src'),
    'src:completed', 'the upstream step is carried over');
select is((select array_agg(task_index order by task_index) from workflow.tasks
           where run_id = :'new_run' and step_slug = 'each' and status = 'queued'),
    array[3, 7], 'only the failed elements are queued');
select is((select count(*) from workflow.tasks where run_id = :'new_run' and step_slug = 'each' and status = 'completed'),
    8::bigint, 'the completed elements kept their outputs');
select is(sw_test.messages('default'), 2::bigint, 'and only two messages are in the queue');
select is((select array_agg(step_slug) from workflow.claim_tasks('default', 100, now => sw_test.at(2))),
    array['each', 'each'], 'a worker gets only those two');
select count(*) from (
    select workflow.complete_task(t.task_id, t.attempts_count, to_jsonb((t.item #>> '{}')::integer * 10), sw_test.at(3))
    from workflow.tasks t where t.run_id = :'new_run' and t.step_slug = 'each' and t.status = 'started'
) as x \g /dev/null
select sw_test.drain('default', now => sw_test.at(4)) \g /dev/null
select is((select output from workflow.step_states where run_id = :'new_run' and step_slug = 'each'),
    '[0, 10, 20, 30, 40, 50, 60, 70, 80, 90]'::jsonb, 'the map output has every element in order');
select is((select status from workflow.runs where run_id = :'new_run'), 'completed', 'the resumed run completes');
select is((select jsonb_build_array(retry_of, resumed_from, resume_reason) from workflow.runs where run_id = :'new_run'),
    jsonb_build_array(:'old_run', 'each', 'elements 3 and 7 fixed'), 'it is linked to the old run, with the step and reason');

select * from finish();
rollback;
