-- approve_task_graph: mark a stored task graph as approved for execution.
--
-- Called by Orchestrator.approve, the `goal approve` command and psql users once the graph was
-- previewed; executing a stored graph requires it (record_task_graph_run checks). Locks the
-- task_graphs row (UPDATE). Returns the approval time.
-- Errors: WF017 unknown graph. Safe to repeat: a graph already approved keeps its first approval
-- time, which is returned again.
create or replace function workflow.approve_task_graph(
    graph_id uuid,
    now timestamptz default clock_timestamp()
)
returns timestamptz
language plpgsql
set search_path = ''
as $$
declare
    v_approved_at timestamptz;
begin
    update workflow.task_graphs g
    set approved_at = coalesce(g.approved_at, approve_task_graph.now)
    where g.graph_id = approve_task_graph.graph_id
    returning g.approved_at into v_approved_at;
    if not found then
        raise exception 'task graph % does not exist', approve_task_graph.graph_id using errcode = 'WF017';
    end if;
    return v_approved_at;
end;
$$;
