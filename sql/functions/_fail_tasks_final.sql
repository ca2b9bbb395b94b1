-- _fail_tasks_final: fail tasks that have no attempts left, and with them their steps and runs.
--
-- Called by fail_tasks (a handler error on the last attempt) and claim_tasks (a lease that
-- expired on the last attempt). The caller holds the task rows locked. Each task becomes
-- 'failed' with its error and its message is deleted; if its run is still 'started' the run
-- fails through _fail_runs (which sweeps the rest of the run).
-- Locks: see _fail_runs (step_states, then runs FOR UPDATE, then the run's other tasks).
create or replace function workflow._fail_tasks_final(task_ids bigint[], errors text[], now timestamptz)
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
    v_runs uuid[];
    v_steps text[];
    v_errors text[];
begin
    if coalesce(cardinality(_fail_tasks_final.task_ids), 0) = 0 then
        return;
    end if;
    for v_queue in
        with upd as (
            update workflow.tasks t
            set status = 'failed', failed_at = _fail_tasks_final.now, error_message = x.error
            from unnest(_fail_tasks_final.task_ids, _fail_tasks_final.errors) as x (task_id, error)
            where t.task_id = x.task_id and t.status in ('queued', 'started')
            returning t.queue_name, t.message_id
        )
        select upd.queue_name, array_agg(upd.message_id) as ids
        from upd where upd.message_id is not null
        group by upd.queue_name
    loop
        perform pgmq.delete(v_queue.queue_name, v_queue.ids);
    end loop;

    select array_agg(t.run_id order by t.task_id),
           array_agg(t.step_slug order by t.task_id),
           array_agg(format('step %s failed: %s', t.step_slug, x.error) order by t.task_id)
    into v_runs, v_steps, v_errors
    from unnest(_fail_tasks_final.task_ids, _fail_tasks_final.errors) as x (task_id, error)
    join workflow.tasks t on t.task_id = x.task_id;
    perform workflow._fail_runs(v_runs, v_steps, v_errors, _fail_tasks_final.now);
end;
$$;
