-- _sweep_runs: terminate every live task of runs that just ended, and delete their messages.
--
-- Called by _fail_runs (a step failed) and _cancel_runs (cancel_workflow_run, enforce_deadlines),
-- after the caller set the runs to 'failed' while holding their rows FOR UPDATE.
-- Each queued or started task becomes 'failed' (its error says why, unless it had one) and its
-- queue message is deleted, so invariant 4 (docs/architecture.md, "Invariants") holds: no live
-- message or claimable task remains.
-- Locks: the runs' live tasks FOR NO KEY UPDATE SKIP LOCKED, then their messages. A task skipped
-- here is held by a completer or failer of the same run; that transaction reaches the run row
-- after us, finds the run failed, and cleans up its own task and message.
create or replace function workflow._sweep_runs(run_ids uuid[], error text, now timestamptz)
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
declare
    v_queue record;
begin
    for v_queue in
        with live as (
            select t.task_id from workflow.tasks t
            where t.run_id = any(_sweep_runs.run_ids) and t.status in ('queued', 'started')
            for no key update skip locked
        ),
        swept as (
            update workflow.tasks t
            set status = 'failed', failed_at = _sweep_runs.now,
                error_message = coalesce(t.error_message, _sweep_runs.error)
            from live
            where t.task_id = live.task_id
            returning t.queue_name, t.message_id
        )
        select swept.queue_name, array_agg(swept.message_id) as ids
        from swept where swept.message_id is not null
        group by swept.queue_name
    loop
        perform pgmq.delete(v_queue.queue_name, v_queue.ids);
    end loop;
end;
$$;
