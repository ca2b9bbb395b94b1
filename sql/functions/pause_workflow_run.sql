-- pause_workflow_run: stop a run from starting new work until it is resumed.
--
-- Called by psql users, clients and the CLI. The run stays 'started' with paused_at set. Its queued
-- tasks' messages are parked (vt = infinity) so no claim sees them and no worker re-reads them in
-- a loop; steps that become ready while paused get parked messages; a lease that expires while
-- paused is parked by the claim that finds it. Tasks already running finish and their outputs
-- count. Idempotent: pausing a paused run changes nothing.
-- Locks: the runs row FOR UPDATE (claims that hold the run commit first; later ones skip it and,
-- once we commit, see paused_at), then the run's messages.
-- Errors: WF011 unknown run, WF013 the run already ended.
create or replace function workflow.pause_workflow_run(run_id uuid, now timestamptz default clock_timestamp())
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_status text;
    v_paused timestamptz;
begin
    select r.status, r.paused_at into v_status, v_paused
    from workflow.runs r where r.run_id = pause_workflow_run.run_id
    for update;
    if not found then
        raise exception 'run % does not exist', pause_workflow_run.run_id using errcode = 'WF011';
    end if;
    if v_status <> 'started' then
        raise exception 'run % already %; only a running run can be paused', pause_workflow_run.run_id, v_status
            using errcode = 'WF013';
    end if;
    if v_paused is not null then
        return;
    end if;
    update workflow.runs r set paused_at = pause_workflow_run.now where r.run_id = pause_workflow_run.run_id;
    perform workflow._set_run_visibility(pause_workflow_run.run_id, 'infinity', false);
    perform workflow._emit_events(array[pause_workflow_run.run_id], array[null::text], array['run_paused'], pause_workflow_run.now);
end;
$$;
