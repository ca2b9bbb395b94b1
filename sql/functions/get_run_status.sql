-- get_run_status: a run's progress and details as one JSON object.
--
-- Called by psql users, clients (get_run_status), the CLI and dashboards. Shape:
-- {"run_id", "flow_slug", "status": "completed"|"failed"|"in_progress" (the Elixir library's
--  three, see run_status),
--  "state": "running"|"paused"|"completed"|"failed"|"cancelled" (see run_state), "total_steps", "completed_steps",
--  "percentage" (0-100, one decimal), "input", "output", "error", "failed_step", "retry_of",
--  "started_at", "completed_at", "failed_at", "paused_at", "cancelled_at", "deadline_at",
--  "steps": [{"step", "status", "type", "tasks", "tasks_completed", "attempts", "started_at",
--             "completed_at", "failed_at", "error"}, ... in flow order]}
-- Locks nothing. Errors: WF011 unknown run. Read-only.
create or replace function workflow.get_run_status(run_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
    v_result jsonb;
begin
    select jsonb_build_object(
        'run_id', r.run_id,
        'flow_slug', r.flow_slug,
        'status', workflow.run_status(r.status),
        'state', workflow.run_state(r.status, r.paused_at, r.cancelled_at),
        'total_steps', st.total,
        'completed_steps', st.done,
        'percentage', case when st.total = 0 then 0 else round(100.0 * st.done / st.total, 1) end,
        'input', r.input,
        'output', r.output,
        'error', r.error_message,
        'failed_step', r.failed_step,
        'retry_of', r.retry_of,
        'started_at', r.started_at,
        'completed_at', r.completed_at,
        'failed_at', r.failed_at,
        'paused_at', r.paused_at,
        'cancelled_at', r.cancelled_at,
        'deadline_at', r.deadline_at,
        'steps', st.steps
    ) into v_result
    from workflow.runs r
    cross join lateral (
        select count(*)::integer as total,
            (count(*) filter (where ss.status = 'completed'))::integer as done,
            coalesce(jsonb_agg(jsonb_build_object(
                'step', ss.step_slug,
                'status', ss.status,
                'type', s.step_type,
                'tasks', ss.initial_tasks,
                'tasks_completed', ss.initial_tasks - ss.remaining_tasks,
                'attempts', (select max(t.attempts_count) from workflow.tasks t where t.run_id = r.run_id and t.step_slug = ss.step_slug),
                'started_at', ss.started_at,
                'completed_at', ss.completed_at,
                'failed_at', ss.failed_at,
                'error', ss.error_message
            ) order by s.step_index), '[]'::jsonb) as steps
        from workflow.step_states ss
        join workflow.steps s on s.flow_slug = ss.flow_slug and s.step_slug = ss.step_slug
        where ss.run_id = r.run_id
    ) as st
    where r.run_id = get_run_status.run_id;
    if v_result is null then
        raise exception 'run % does not exist', get_run_status.run_id using errcode = 'WF011';
    end if;
    return v_result;
end;
$$;
