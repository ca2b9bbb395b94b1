-- _sweep: the engine's own housekeeping, cheap enough to run from its busiest calls.
--
-- Called by claim_tasks, start_flows and get_run_status (throttled: at most once per second per
-- database) and by maintain (force => true: every call, still one sweeper at a time). So that
-- nothing needs a worker, a reaper or pg_cron to end a run, it:
--   1. marks dead workers (heartbeat older than their timeout) released and releases their
--      leases at once (_release_workers): their tasks are claimable as the next attempt;
--   2. fails live runs whose owner (the process executing their local steps) is gone, naming it,
--      when a local step of the run is not finished (_fail_dead_owners);
--   3. cancels runs past their deadline (enforce_deadlines), and fails wait steps past their
--      timeout (_expire_waits);
--   4. starts the scheduled runs whose start_at has come (_start_due_runs) and fires the
--      schedule ticks that have come (fire_due_schedules): so any worker, app or psql session
--      calling the engine fires ticks, with no leader and nothing to configure; a role that
--      may not start runs (workflow_worker) has them started by _fire_due, a SECURITY DEFINER
--      function that does only this, capped at the real clock.
-- Cost when not due: one read of the single workflow.sweeps row (no lock, no write). When due:
-- pg_try_advisory_xact_lock, so concurrent callers never wait for each other (the loser goes on
-- without sweeping), then the sweeps row is re-checked and moved under that lock. Each part runs
-- in its own subtransaction (only when due): a caller whose role lacks a privilege a part needs
-- (a reader calling get_run_status; workflow_worker, which may not cancel a run past its
-- deadline) skips that part instead of failing its own call; in a read-only transaction (or on a
-- hot standby) the sweep does nothing.
-- A clock injected into the past or future of the last sweep counts as due, so tests and real
-- time cannot lock each other out.
-- Returns {"released_workers", "released_tasks", "failed_runs", "cancelled_runs",
-- "started_runs", "fired_ticks"}, or null when it
-- did not run. Errors: none of its own. Safe to call concurrently and repeatedly.
create or replace function workflow._sweep(now timestamptz, force boolean default false)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_last timestamptz;
    v_dead text[];
    v_released integer := 0;
    v_failed integer := 0;
    v_cancelled integer := 0;
    v_scheduled integer := 0;
    v_fired integer := 0;
    v_as_owner boolean := false;
begin
    select s.swept_at into v_last from workflow.sweeps s where s.sweep_id = 1;
    if not coalesce(_sweep.force, false) and v_last <= _sweep.now and v_last > _sweep.now - interval '1 second' then
        return null;
    end if;
    -- "SWSWEEP" in ASCII: one sweeper at a time, and nobody waits for it.
    if not pg_try_advisory_xact_lock(x'53575357454550'::bigint) then
        return null;
    end if;
    begin
        update workflow.sweeps s set swept_at = _sweep.now
        where s.sweep_id = 1
          and (coalesce(_sweep.force, false) or not (s.swept_at <= _sweep.now and s.swept_at > _sweep.now - interval '1 second'));
        if not found then
            return null;
        end if;
    exception when insufficient_privilege or read_only_sql_transaction then
        -- A reader, a read-only transaction or a hot standby: nothing the sweep writes may be
        -- written here.
        return null;
    end;

    -- PHASE 1: dead workers release their leases, once; PHASE 2: runs whose owner is gone
    begin
        with dead as (
            update workflow.workers w
            set released_at = _sweep.now
            where w.released_at is null and not workflow._worker_alive(w, _sweep.now)
            returning w.worker_id
        )
        select array_agg(dead.worker_id order by dead.worker_id) into v_dead from dead;
        v_released := workflow._release_workers(v_dead, _sweep.now);
        v_failed := workflow._fail_dead_owners(_sweep.now);
    exception when insufficient_privilege then
        raise debug 'workflow._sweep: workers and owners skipped: %', sqlerrm;
    end;
    -- PHASE 3: deadlines (cancelling needs runs.cancelled_at, which workflow_worker may not
    -- write: a worker role's sweep still releases dead workers' leases above)
    begin
        v_cancelled := workflow.enforce_deadlines(_sweep.now);
    exception when insufficient_privilege then
        raise debug 'workflow._sweep: deadlines skipped: %', sqlerrm;
    end;
    -- PHASE 3b: wait steps past their timeout fail; kept events past their keep go (_expire_waits)
    begin
        perform workflow._expire_waits(_sweep.now);
    exception when insufficient_privilege then
        raise debug 'workflow._sweep: wait timeouts skipped: %', sqlerrm;
    end;
    -- PHASE 4: runs whose time has come. Any error is the schedule's or the run's, never the
    -- caller's: a claim must not fail because a tick could not start its run. A role that may
    -- not start runs (workflow_worker) gets insufficient_privilege here and has the owner's
    -- narrowly scoped _fire_due do both parts instead, capped at the real clock.
    begin
        v_scheduled := workflow._start_due_runs(_sweep.now);
    exception when insufficient_privilege then
        v_as_owner := true;
    when others then
        raise debug 'workflow._sweep: scheduled runs skipped: %', sqlerrm;
    end;
    if not v_as_owner then
        begin
            v_fired := workflow.fire_due_schedules(_sweep.now);
        exception when insufficient_privilege then
            v_as_owner := true;
        when others then
            raise debug 'workflow._sweep: schedule ticks skipped: %', sqlerrm;
        end;
    end if;
    if v_as_owner then
        begin
            select d.started_runs, d.fired_ticks into v_scheduled, v_fired from workflow._fire_due(_sweep.now) as d;
        exception when others then
            raise debug 'workflow._sweep: due runs and ticks skipped: %', sqlerrm;
        end;
    end if;
    return jsonb_build_object('released_workers', coalesce(cardinality(v_dead), 0), 'released_tasks', v_released,
        'failed_runs', v_failed, 'cancelled_runs', v_cancelled, 'started_runs', v_scheduled, 'fired_ticks', v_fired);
end;
$$;
