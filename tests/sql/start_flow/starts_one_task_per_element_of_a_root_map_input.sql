-- A root map step maps over the run input: one task per element, index order, each carrying its
-- element; the step's remaining_tasks and initial_tasks are the array length.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('root_map') \g /dev/null
select workflow.start_flow('root_map', '["x", {"y": 2}, 3]') as run_id \gset

select results_eq(
    format('select task_index, item from workflow.tasks where run_id = %L and step_slug = %L order by task_index', :'run_id', 'each'),
    $$values (0, '"x"'::jsonb), (1, '{"y": 2}'::jsonb), (2, '3'::jsonb)$$,
    'one task per element, carrying it'
);
select results_eq(
    format('select status, remaining_tasks, initial_tasks from workflow.step_states where run_id = %L and step_slug = %L', :'run_id', 'each'),
    $$values ('started', 3, 3)$$,
    'the map step is started with 3 tasks to go'
);
select is(sw_test.messages('default'), 3::bigint, 'one message per element');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'join'), 0::bigint,
    'the dependent step waits');

select * from finish();
rollback;
