-- complete_task is complete_tasks for one task: true when accepted, false when ignored (a
-- repeat, a stale or unknown token). Its output defaults to JSON null.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one') as run_id \gset
select task_id as a from workflow.claim_tasks('default', now => sw_test.t0()) \gset

select is(workflow.complete_task(:a, 0), false, 'a wrong attempt is ignored');
select is(workflow.complete_task(-1, 1), false, 'an unknown task is ignored');
select is(workflow.complete_task(:a, 1), true, 'the right token is accepted');
select is(workflow.complete_task(:a, 1), false, 'a repeat is ignored');
select is((select output from workflow.runs where run_id = :'run_id'), '{"a": null}'::jsonb, 'the default output is JSON null');

select * from finish();
rollback;
