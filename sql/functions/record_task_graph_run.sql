-- record_task_graph_run: note which flow an approved task graph runs as, and its latest run.
--
-- Called by Orchestrator.execute_graph: once with run_id null after it registered the graph's
-- flow (before the run starts, so an unapproved graph never starts), and again with the run's
-- id. A null run_id leaves last_run_id as it was. Locks the task_graphs row (UPDATE).
-- Errors: WF017 unknown graph; WF013 graph not approved; WF001 bad flow name; WF002 unknown
-- flow; WF011 unknown run. Safe to repeat.
create or replace function workflow.record_task_graph_run(
    graph_id uuid,
    flow_slug text,
    run_id uuid default null
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_approved_at timestamptz;
begin
    -- GUARD: an approved graph, an existing flow and run
    select g.approved_at into v_approved_at
    from workflow.task_graphs g where g.graph_id = record_task_graph_run.graph_id
    for update;
    if not found then
        raise exception 'task graph % does not exist', record_task_graph_run.graph_id using errcode = 'WF017';
    end if;
    if v_approved_at is null then
        raise exception 'task graph % is not approved', record_task_graph_run.graph_id
            using errcode = 'WF013', hint = 'Review it, then approve it (approve_task_graph) before running it.';
    end if;
    perform workflow._validate_name('flow', record_task_graph_run.flow_slug);
    if not exists (select 1 from workflow.flows f where f.flow_slug = record_task_graph_run.flow_slug) then
        raise exception 'flow % does not exist', record_task_graph_run.flow_slug using errcode = 'WF002';
    end if;
    if record_task_graph_run.run_id is not null
        and not exists (select 1 from workflow.runs r where r.run_id = record_task_graph_run.run_id) then
        raise exception 'run % does not exist', record_task_graph_run.run_id using errcode = 'WF011';
    end if;

    update workflow.task_graphs g
    set flow_slug = record_task_graph_run.flow_slug,
        last_run_id = coalesce(record_task_graph_run.run_id, g.last_run_id)
    where g.graph_id = record_task_graph_run.graph_id;
end;
$$;
