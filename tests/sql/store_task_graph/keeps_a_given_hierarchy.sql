-- A hierarchy given by the caller (the tree as decomposed) is stored as is, beside the
-- flattened tasks; one that is not an array is WF010.
begin;
\ir ../_helpers.psql
select plan(2);

select workflow.store_task_graph(
    'Ship',
    '[{"id": "build_ui", "depth": 1}, {"id": "build_api", "depth": 1}, {"id": "deploy", "depends_on": ["build_api", "build_ui"]}]',
    '[{"id": "build", "subtasks": [{"id": "build_ui", "subtasks": []}, {"id": "build_api", "subtasks": []}]},
      {"id": "deploy", "subtasks": []}]'
) as gid \gset

select is((select hierarchy -> 0 -> 'subtasks' -> 1 ->> 'id' from workflow.task_graphs where graph_id = :'gid'), 'build_api',
    'the given tree is stored');
select throws_ok($$select workflow.store_task_graph('Ship', '[{"id": "a"}]', '{"id": "a"}')$$, 'WF010', null,
    'a hierarchy that is not an array is WF010');

select * from finish();
rollback;
