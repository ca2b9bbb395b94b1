-- get_task_graph: a stored task graph as JSON, for preview, approval and execution.
--
-- {"graph_id", "goal", "tasks" (flattened, each with id, description, depends_on, depth),
-- "hierarchy" (the tree as decomposed), "decomposed_at", "approved_at" (null until approved),
-- "flow_slug" and "last_run_id" (null until executed), "created_at"}. Called by the Orchestrator,
-- the `goal` commands and psql users. Locks nothing.
-- Errors: WF017 unknown graph. Read-only.
create or replace function workflow.get_task_graph(graph_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
    v_result jsonb;
begin
    select jsonb_build_object(
        'graph_id', g.graph_id,
        'goal', g.goal,
        'tasks', g.tasks,
        'hierarchy', g.hierarchy,
        'decomposed_at', g.decomposed_at,
        'approved_at', g.approved_at,
        'flow_slug', g.flow_slug,
        'last_run_id', g.last_run_id,
        'created_at', g.created_at
    ) into v_result
    from workflow.task_graphs g where g.graph_id = get_task_graph.graph_id;
    if v_result is null then
        raise exception 'task graph % does not exist', get_task_graph.graph_id using errcode = 'WF017';
    end if;
    return v_result;
end;
$$;
