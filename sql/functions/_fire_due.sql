-- _fire_due: start the scheduled runs whose start_at has come and fire the schedule ticks that
-- have come, with the privileges of the schema's owner, for a role that may not start runs.
--
-- Called by _sweep only, and only when its own (invoker) call of _start_due_runs or
-- fire_due_schedules lacked a privilege: workflow_worker may not start runs, yet a worker's
-- claims must fire ticks, or ticks would depend on an admin session being there.
-- Why SECURITY DEFINER (the one exception to "every function is SECURITY INVOKER"): it is the
-- narrowest way to let the worker role fire what is due without granting it start_flows'
-- footprint (runs, step states, schedules, keys), which would let it start any run by hand.
-- It does exactly what the sweep would do for an admin, nothing else: it takes no flow, input
-- or run, and its clock is capped at the real clock (least(now, clock_timestamp())), so a
-- caller can fire only what is already due, never a tick or a start_at of the future. Owned by
-- the role that installs the schema (its owner); search_path is ''; execute is revoked from
-- public below and granted to workflow_admin and workflow_worker only (sql/grants.sql).
-- Locks: as _start_due_runs, then as fire_due_schedules (each in its own subtransaction, so one
-- part's error does not undo the other's work).
-- Returns the runs started by start_at and the runs started by ticks. Errors: none of its own
-- (a part that fails is skipped and logged at DEBUG). Safe to call concurrently and repeatedly.
create or replace function workflow._fire_due(now timestamptz)
returns table (started_runs integer, fired_ticks integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_now timestamptz := least(coalesce(_fire_due.now, clock_timestamp()), clock_timestamp());
begin
    started_runs := 0;
    fired_ticks := 0;
    begin
        started_runs := workflow._start_due_runs(v_now);
    exception when others then
        raise debug 'workflow._fire_due: scheduled runs skipped: %', sqlerrm;
    end;
    begin
        fired_ticks := workflow.fire_due_schedules(v_now);
    exception when others then
        raise debug 'workflow._fire_due: schedule ticks skipped: %', sqlerrm;
    end;
    return next;
end;
$$;
revoke execute on function workflow._fire_due(timestamptz) from public;
comment on function workflow._fire_due(timestamptz) is
'SECURITY DEFINER: a worker role''s sweep fires due ticks and start_at runs (capped at the real clock)';
