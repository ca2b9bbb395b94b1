-- resume_workflow_run: let a paused run continue where it stopped.
--
-- Called by psql users, clients and the CLI. Clears paused_at, makes the parked messages of the
-- run claimable now and wakes the workers of their queues (pg_notify per queue). Idempotent:
-- resuming a running run that is not paused changes nothing. A step that is still sleeping (its
-- sleep option) keeps its wake time: its messages become visible at step_states.wake_at.
-- Locks: the runs row FOR UPDATE, then the run's parked messages.
-- Errors: WF011 unknown run, WF013 the run already ended.
create or replace function workflow.resume_workflow_run(run_id uuid, now timestamptz default clock_timestamp())
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_status text;
    v_paused timestamptz;
    v_sleep record;
begin
    select r.status, r.paused_at into v_status, v_paused
    from workflow.runs r where r.run_id = resume_workflow_run.run_id
    for update;
    if not found then
        raise exception 'run % does not exist', resume_workflow_run.run_id using errcode = 'WF011';
    end if;
    if v_status <> 'started' then
        raise exception 'run % already %; there is nothing to resume', resume_workflow_run.run_id, v_status
            using errcode = 'WF013';
    end if;
    if v_paused is null then
        return;
    end if;
    update workflow.runs r set paused_at = null where r.run_id = resume_workflow_run.run_id;
    perform workflow._set_run_visibility(resume_workflow_run.run_id, resume_workflow_run.now, true);
    -- A step still sleeping (the sleep option, docs/control-flow.md) keeps its wake time.
    for v_sleep in
        select t.queue_name, ss.wake_at, array_agg(t.message_id) as ids
        from workflow.tasks t
        join workflow.step_states ss on ss.run_id = t.run_id and ss.step_slug = t.step_slug
        where t.run_id = resume_workflow_run.run_id and t.status = 'queued' and t.message_id is not null
          and ss.wake_at > resume_workflow_run.now
        group by t.queue_name, ss.wake_at
    loop
        execute format('update pgmq.%I set vt = $1 where msg_id = any($2)', 'q_' || v_sleep.queue_name)
        using v_sleep.wake_at, v_sleep.ids;
    end loop;
    perform workflow._emit_events(array[resume_workflow_run.run_id], array[null::text], array['run_resumed'], resume_workflow_run.now);
end;
$$;
