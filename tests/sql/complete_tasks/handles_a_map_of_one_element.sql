-- A map over a one-element array is one task whose output becomes a one-element array (not
-- the bare value), so dependents see the same shape whatever the length.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('root_map') \g /dev/null
select workflow.start_flow('root_map', '[{"id": 42}]') as run_id \gset
select results_eq(
    $$select task_index, item from workflow.claim_tasks('default', now => sw_test.t0())$$,
    $$values (0, '{"id": 42}'::jsonb)$$, 'one task with the element');
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'each'), '"done"'), 'it completes');
select is((select output from workflow.step_states where run_id = :'run_id' and step_slug = 'each'), '["done"]'::jsonb,
    'the step output is a one-element array');
select is((select input from workflow.claim_tasks('default', now => sw_test.t0())), '{"run": [{"id": 42}], "each": ["done"]}'::jsonb,
    'the dependent gets it as an array');

select * from finish();
rollback;
