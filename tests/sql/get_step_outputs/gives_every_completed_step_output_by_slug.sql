-- get_step_outputs: the completed steps' outputs by slug (a map step's as the array in index
-- order), nothing for steps not completed, {} for a run that completed nothing, WF011 for an
-- unknown run.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('map') \g /dev/null
select workflow.start_flow('map', now => sw_test.t0()) as run_id \gset
select is(workflow.get_step_outputs(:'run_id'), '{}'::jsonb, 'nothing completed yet: an empty object');

select count(*) from workflow.claim_tasks('default', 10, now => sw_test.t0()) \g /dev/null
select sw_test.complete(sw_test.task_id(:'run_id', 'src'), '[10, 20]') \g /dev/null
select count(*) from workflow.claim_tasks('default', 10, now => sw_test.t0()) \g /dev/null
select sw_test.complete(sw_test.task_id(:'run_id', 'each', 1), '"second"') \g /dev/null
select is(workflow.get_step_outputs(:'run_id'), '{"src": [10, 20]}'::jsonb, 'a map step half done is left out');

select sw_test.complete(sw_test.task_id(:'run_id', 'each', 0), '"first"') \g /dev/null
select is(workflow.get_step_outputs(:'run_id'), '{"src": [10, 20], "each": ["first", "second"]}'::jsonb,
    'a completed map step gives its task outputs in index order');

select throws_ok(
    format('select workflow.get_step_outputs(%L)', '00000000-0000-0000-0000-000000000000'),
    'WF011', null, 'an unknown run');

select * from finish();
rollback;
