-- store_task_graph stores one row per call with a fresh graph_id: tasks keep their extra keys,
-- get a default description, depends_on (de-duplicated, sorted) and depth; without a hierarchy
-- the tasks become a flat list of nodes; nothing is approved or run yet.
begin;
\ir ../_helpers.psql
select plan(10);

select workflow.store_task_graph(
    'Build auth',
    '[{"id": "analyze", "description": "Analyze", "owner": "ana"},
      {"id": "design", "depends_on": ["analyze", "analyze"]},
      {"id": "implement", "description": "Implement", "depends_on": ["design", "analyze"], "depth": 2}]',
    null,
    sw_test.t0()
) as gid \gset

select is((select count(*) from workflow.task_graphs), 1::bigint, 'one graph is stored');
select is((select goal from workflow.task_graphs where graph_id = :'gid'), 'Build auth', 'the goal is kept');
select is((select tasks -> 0 from workflow.task_graphs where graph_id = :'gid'),
    '{"id": "analyze", "description": "Analyze", "owner": "ana", "depends_on": [], "depth": 0}'::jsonb,
    'extra keys are kept and defaults are filled in');
select is((select tasks -> 1 -> 'depends_on' from workflow.task_graphs where graph_id = :'gid'), '["analyze"]'::jsonb,
    'depends_on is de-duplicated');
select is((select tasks -> 1 ->> 'description' from workflow.task_graphs where graph_id = :'gid'), '',
    'a missing description is the empty string');
select is((select tasks -> 2 -> 'depends_on' from workflow.task_graphs where graph_id = :'gid'), '["analyze", "design"]'::jsonb,
    'depends_on is sorted');
select is((select (tasks -> 2 -> 'depth')::integer from workflow.task_graphs where graph_id = :'gid'), 2, 'a given depth is kept');
select is((select hierarchy from workflow.task_graphs where graph_id = :'gid'),
    '[{"id": "analyze", "description": "Analyze", "subtasks": []}, {"id": "design", "description": "", "subtasks": []},
      {"id": "implement", "description": "Implement", "subtasks": []}]'::jsonb,
    'without a hierarchy the tasks become a flat list of nodes');
select is(
    (select row(decomposed_at, approved_at, flow_slug, last_run_id)::text from workflow.task_graphs where graph_id = :'gid'),
    row(sw_test.t0(), null::timestamptz, null::text, null::uuid)::text,
    'decomposed_at is the given time; not approved, no flow, no run');
select isnt(workflow.store_task_graph('Build auth', '[{"id": "a"}]'), :'gid'::uuid, 'a second call stores a new graph');

select * from finish();
rollback;
