-- cancel_workflow_run: stop a run: it fails with the reason, flagged cancelled, and none of its
-- work stays queued.
--
-- Called by psql users, clients and the CLI. Every queued task and its message is removed; tasks
-- running on workers are told at their next lease renewal or completion, and their completions
-- are then ignored. Cancelling a run that already ended is an error (WF013) unless force is true:
-- a completed run is then marked failed and cancelled (the Elixir library's force semantics); cancelling a
-- cancelled run again changes nothing. A scheduled run (start_at in the future) is cancelled
-- before it starts: it never starts.
-- Locks: the runs row FOR UPDATE (claims in flight commit first; later claims skip the run), then
-- as _sweep_runs. Errors: WF011 unknown run, WF013 run already ended (without force).
create or replace function workflow.cancel_workflow_run(
    run_id uuid,
    reason text default 'User requested cancellation',
    force boolean default false,
    now timestamptz default clock_timestamp()
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_status text;
    v_cancelled timestamptz;
begin
    select r.status, r.cancelled_at into v_status, v_cancelled
    from workflow.runs r where r.run_id = cancel_workflow_run.run_id
    for update;
    if not found then
        raise exception 'run % does not exist', cancel_workflow_run.run_id using errcode = 'WF011';
    end if;
    if v_cancelled is not null then
        return;
    end if;
    if v_status not in ('started', 'scheduled') and not cancel_workflow_run.force then
        raise exception 'run % already %', cancel_workflow_run.run_id, v_status
            using errcode = 'WF013', hint = 'Pass force => true to mark it cancelled anyway.';
    end if;
    perform workflow._cancel_runs(
        array[cancel_workflow_run.run_id],
        coalesce(cancel_workflow_run.reason, 'User requested cancellation'),
        cancel_workflow_run.now
    );
    -- Its wait steps stop waiting: an event sent later is kept for nobody, not delivered.
    delete from workflow.event_waits w where w.run_id = cancel_workflow_run.run_id;
end;
$$;
