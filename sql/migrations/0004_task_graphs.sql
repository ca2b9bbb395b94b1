-- 0004_task_graphs: stored task graphs of goal-driven orchestration (HTDAG).
--
-- A decomposer turns a goal into tasks; the graph is stored before anything runs so that it can
-- be previewed (and approved) by a person or another program, then executed as a flow. tasks is
-- the flattened graph that runs ([{"id", "description", "depends_on", "depth", ...}], one entry per
-- leaf task, dependencies already expanded to leaves); hierarchy is the tree as decomposed, kept
-- only for display. flow_slug and last_run_id record the flow built from the graph and its latest
-- run. Written by store_task_graph / approve_task_graph / record_task_graph_run, read with
-- get_task_graph.
create table workflow.task_graphs (
    graph_id uuid primary key,
    goal text not null,
    tasks jsonb not null,
    hierarchy jsonb not null,
    decomposed_at timestamptz not null,
    approved_at timestamptz,
    flow_slug text,
    last_run_id uuid,
    created_at timestamptz not null default now(),
    constraint goal_is_not_blank check (btrim(goal) <> ''),
    constraint tasks_is_a_non_empty_array check (jsonb_typeof(tasks) = 'array' and jsonb_array_length(tasks) > 0),
    constraint hierarchy_is_an_array check (jsonb_typeof(hierarchy) = 'array'),
    constraint run_needs_a_flow check (last_run_id is null or flow_slug is not null)
);

-- Listing recent graphs (newest first) without a sort.
create index task_graphs_created_idx on workflow.task_graphs (created_at desc);
