-- get_run_status: a run's progress and details as one JSON object.
--
-- Called by psql users, clients (get_run_status), the CLI and dashboards. Shape:
-- {"run_id", "flow_slug", "status": "completed"|"failed"|"in_progress" (the Elixir library's
--  three, see run_status),
--  "state": "running"|"paused"|"completed"|"failed"|"cancelled" (see run_state), "total_steps", "completed_steps",
--  "skipped_steps" (steps skipped by a condition; completed_steps counts them as done, so a
--  completed run with skipped steps reads 100%), "percentage" (0-100, one decimal), "input",
--  "output", "error", "failed_step", "retry_of",
--  "resumed_from", "resume_reason" (a run made by resume_from_step: the step and the reason),
--  "started_at", "completed_at", "failed_at", "paused_at", "cancelled_at", "deadline_at",
--  "steps": [{"step", "status", "type", "tasks", "tasks_completed", "attempts", "started_at",
--             "completed_at", "failed_at", "error", "waiting_on_limits", "waiting_for_worker",
--             "waiting_for_event", "sleeping_until"}, ...
--             in flow order],
--  "owner": the worker id executing its local steps (or null),
--  "version", "version_hash": the flow version the run is pinned to (number and shape hash)}
-- waiting_for_worker is true for a started step with tasks left when no live registered worker
-- can take them: for a distributed step, none whose queues (null: any), handlers (null: any;
-- per flow or per flow version, see _worker_handles) and resources cover it, so a task of a
-- version no live worker serves reads true; for a local step, the run's owner is not alive. Only registered
-- workers count (register_worker), so with unregistered workers it reads true.
-- waiting_for_event: for a wait step that waits, {"event", "key", "since", "timeout_at"} (the
-- key send_event must quote), else null; sleeping_until: a started step's wake time while it
-- sleeps (the sleep option), else null (docs/control-flow.md).
-- waiting_on_limits lists the concurrency and rate limits that hold the step's queued tasks back
-- now, with their use and the tasks ahead (see _limits_waited_on); [] when none.
-- Runs the throttled sweep first (_sweep), so a dead owner or a passed deadline shows at once.
-- Locks nothing of its own. Errors: WF011 unknown run.
create or replace function workflow.get_run_status(run_id uuid, now timestamptz default clock_timestamp())
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_result jsonb;
begin
    perform workflow._sweep(get_run_status.now);
    select jsonb_build_object(
        'run_id', r.run_id,
        'flow_slug', r.flow_slug,
        'status', workflow.run_status(r.status),
        'state', workflow.run_state(r.status, r.paused_at, r.cancelled_at),
        'total_steps', st.total,
        'completed_steps', st.done,
        'skipped_steps', st.skipped,
        'percentage', case when st.total = 0 then 0 else round(100.0 * st.done / st.total, 1) end,
        'input', r.input,
        'output', r.output,
        'error', r.error_message,
        'failed_step', r.failed_step,
        'retry_of', r.retry_of,
        'resumed_from', r.resumed_from,
        'resume_reason', r.resume_reason,
        'started_at', r.started_at,
        'completed_at', r.completed_at,
        'failed_at', r.failed_at,
        'paused_at', r.paused_at,
        'cancelled_at', r.cancelled_at,
        'deadline_at', r.deadline_at,
        'start_at', r.start_at,
        'schedule_name', r.schedule_name,
        'scheduled_for', r.scheduled_for,
        'owner', r.owner_worker_id,
        'version', fv.version,
        'version_hash', fv.shape_hash,
        'steps', st.steps
    ) into v_result
    from workflow.runs r
    join workflow.flow_versions fv on fv.version_id = r.version_id
    cross join lateral (
        select count(*)::integer as total,
            (count(*) filter (where ss.status in ('completed', 'skipped')))::integer as done,
            (count(*) filter (where ss.status = 'skipped'))::integer as skipped,
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
                'error', ss.error_message,
                'waiting_on_limits', workflow._limits_waited_on(r.run_id, ss.step_slug, get_run_status.now),
                'waiting_for_event', (
                    select jsonb_build_object('event', w.event_name, 'key', w.event_key, 'since', w.created_at,
                        'timeout_at', w.timeout_at)
                    from workflow.event_waits w where w.run_id = r.run_id and w.step_slug = ss.step_slug),
                'sleeping_until', case when ss.status = 'started' and ss.wake_at > get_run_status.now then ss.wake_at end,
                'waiting_for_worker', ss.status = 'started' and ss.remaining_tasks > 0 and r.status = 'started'
                    and s.step_type <> 'wait'
                    and case when s.execution = 'local' then not coalesce((
                        select workflow._worker_alive(w, get_run_status.now)
                        from workflow.workers w where w.worker_id = r.owner_worker_id), false)
                    else not exists (
                        select 1 from workflow.workers w
                        where workflow._worker_alive(w, get_run_status.now)
                          and (w.queues is null or s.queue_name = any(w.queues))
                          and (w.handlers is null or workflow._worker_handles(w.handlers, r.flow_slug, fv.shape_hash, s.step_slug))
                          and s.required_resources <@ w.resources)
                    end
            ) order by s.step_index), '[]'::jsonb) as steps
        from workflow.step_states ss
        join workflow.steps s on s.version_id = ss.version_id and s.step_slug = ss.step_slug
        where ss.run_id = r.run_id
    ) as st
    where r.run_id = get_run_status.run_id;
    if v_result is null then
        raise exception 'run % does not exist', get_run_status.run_id using errcode = 'WF011';
    end if;
    return v_result;
end;
$$;
