-- _cancel_runs: end runs as cancelled: status 'failed', cancelled_at set, the reason as error.
--
-- Called by cancel_workflow_run (a person or program asked) and enforce_deadlines (the run's
-- deadline passed), with the runs' rows already locked FOR UPDATE by the caller. Sweeps every live
-- task and message of the runs (_sweep_runs), so nothing of them can be claimed afterwards, and
-- workers running their tasks learn it at their next lease renewal (extend_leases returns false)
-- or completion (reported not accepted). Records a run_cancelled event (_emit_events).
create or replace function workflow._cancel_runs(run_ids uuid[], reason text, now timestamptz)
returns void
language plpgsql
set search_path = ''
-- Hot path: plans pinned to key lookups, as every state-machine function; the reasons and the
-- measurements are under "Plans of the state machine" in docs/operations.md.
set plan_cache_mode = force_generic_plan
set join_collapse_limit = 1
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
set random_page_cost = 1.1
as $$
begin
    update workflow.runs r
    set status = 'failed', cancelled_at = _cancel_runs.now, failed_at = coalesce(r.failed_at, _cancel_runs.now),
        error_message = _cancel_runs.reason, paused_at = null
    where r.run_id = any(_cancel_runs.run_ids);
    -- Steps that were under way end as failed, so a status page does not show them running.
    update workflow.step_states s
    set status = 'failed', failed_at = _cancel_runs.now, error_message = 'cancelled: ' || _cancel_runs.reason
    where s.run_id = any(_cancel_runs.run_ids) and s.status = 'started';
    perform workflow._sweep_runs(_cancel_runs.run_ids, 'cancelled: ' || _cancel_runs.reason, _cancel_runs.now);
    perform workflow._emit_events(
        _cancel_runs.run_ids,
        array(select null::text from unnest(_cancel_runs.run_ids)),
        array(select 'run_cancelled' from unnest(_cancel_runs.run_ids)),
        _cancel_runs.now
    );
end;
$$;
