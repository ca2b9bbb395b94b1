-- fail_tasks: report failed attempts of claimed tasks, in one transaction for the whole batch.
--
-- Called by workers (handler exceptions, non-JSON output) and by fail_task. Each element is
-- (task_id, attempt, error[, retryable]) with the attempt token from claim_tasks; retryable
-- (default true for every task; an array of the same length, null elements meaning true) false
-- marks a permanent failure (a deterministic error: retrying cannot help), which fails the task
-- at once without spending its remaining attempts. Per task, the outcome:
--   'retry'  attempts remain and the failure is retryable: the task is queued again and its
--            message becomes visible after
--            base_delay * 2^(attempt-1) seconds (capped at one day; parked while the run is
--            paused);
--   'failed' it was the last attempt, or the failure is not retryable: the task, its step and
--            its run fail, and the rest of the
--            run is swept (no live message or claimable task stays behind);
--   'stale'  the token does not match a started task: ignored, nothing changes.
-- Locks, in order: the tasks (by task_id, FOR NO KEY UPDATE, matching tokens only), the final
-- failures' step_states, then every involved run FOR UPDATE (by run_id) so a retry cannot
-- re-queue work in a run another transaction is failing; then as _fail_runs.
-- Errors: WF010 arrays of different lengths or a task id twice. Safe to repeat (stale).
create or replace function workflow.fail_tasks(
    task_ids bigint[],
    attempts integer[],
    errors text[],
    now timestamptz default clock_timestamp(),
    retryable boolean[] default null
)
returns table (task_id bigint, outcome text)
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
-- No JIT: with seq scans disabled, a scan that has no index (the sweep's read of workers) costs
-- 1e10 and sets off JIT compilation, ~200 ms per statement (see docs/operations.md).
set jit = off
as $$
declare
    v_locked bigint[];
    v_final bigint[];
    v_final_errors text[];
    v_retry record;
    v_outcomes jsonb := '{}'::jsonb;
begin
    -- GUARD: well-formed batch
    if cardinality(fail_tasks.task_ids) is distinct from cardinality(fail_tasks.attempts)
        or cardinality(fail_tasks.task_ids) is distinct from cardinality(fail_tasks.errors) then
        raise exception 'task_ids, attempts and errors must have the same length' using errcode = 'WF010';
    end if;
    if fail_tasks.retryable is not null and cardinality(fail_tasks.retryable) <> cardinality(fail_tasks.task_ids) then
        raise exception 'retryable has % entries for % tasks', cardinality(fail_tasks.retryable), cardinality(fail_tasks.task_ids)
            using errcode = 'WF010';
    end if;
    if (select count(distinct i) from unnest(fail_tasks.task_ids) as i) <> cardinality(fail_tasks.task_ids) then
        raise exception 'a task id appears twice in one batch' using errcode = 'WF010';
    end if;

    -- PHASE 1: lock the tasks whose token matches
    select array_agg(l.task_id) into v_locked from (
        select t.task_id
        from workflow.tasks t
        join unnest(fail_tasks.task_ids, fail_tasks.attempts) as i (task_id, attempt) on i.task_id = t.task_id
        where t.status = 'started' and t.attempts_count = i.attempt
        order by t.task_id
        for no key update of t
    ) as l;
    if v_locked is null then
        return query select i.task_id, 'stale'::text from unnest(fail_tasks.task_ids) with ordinality as i (task_id, ord) order by i.ord;
        return;
    end if;

    -- PHASE 2: locks on steps (final failures) and runs, in the common order
    perform 1 from workflow.step_states s
    where (s.run_id, s.step_slug) in (
        select t.run_id, t.step_slug from workflow.tasks t
        join unnest(fail_tasks.task_ids) with ordinality as i (task_id, ord) on i.task_id = t.task_id
        where t.task_id = any(v_locked)
          and (t.attempts_count >= t.max_attempts or fail_tasks.retryable[i.ord] is false)
    )
    order by s.run_id, s.step_slug
    for no key update;
    perform 1 from workflow.runs r
    where r.run_id in (select t.run_id from workflow.tasks t where t.task_id = any(v_locked))
    order by r.run_id
    for update;

    -- PHASE 3: retries, in runs that are still live
    for v_retry in
        with upd as (
            update workflow.tasks t
            set status = 'queued', error_message = x.error, worker_id = null
            from unnest(fail_tasks.task_ids, fail_tasks.errors) with ordinality as x (task_id, error, ord),
                workflow.runs r, workflow.step_states ss, workflow.steps st
            where t.task_id = x.task_id and t.task_id = any(v_locked)
              and t.attempts_count < t.max_attempts and fail_tasks.retryable[x.ord] is not false
              and r.run_id = t.run_id and (r.status = 'started') is true
              and ss.run_id = t.run_id and ss.step_slug = t.step_slug
              and st.version_id = ss.version_id and st.step_slug = t.step_slug
            returning t.task_id, t.queue_name, t.message_id, r.paused_at is not null as paused,
                least(st.base_delay_seconds * power(2, t.attempts_count - 1), 86400)::integer as delay
        )
        select * from upd
    loop
        -- Same effect as pgmq.set_vt, but measured from this call's (injectable) clock.
        execute format('update pgmq.%I set vt = $1 where msg_id = $2', 'q_' || v_retry.queue_name)
        using case when v_retry.paused then 'infinity'::timestamptz
                   else fail_tasks.now + make_interval(secs => v_retry.delay) end,
            v_retry.message_id;
        if v_retry.delay = 0 and not v_retry.paused then
            perform pg_notify('workflow_q_' || v_retry.queue_name, '');
        end if;
        v_outcomes := v_outcomes || jsonb_build_object(v_retry.task_id::text, 'retry');
    end loop;

    -- PHASE 4: everything else that was locked fails for good (last attempt, or a run that
    -- was failed meanwhile: then only the task and its message are cleaned up)
    select array_agg(t.task_id order by t.task_id), array_agg(x.error order by t.task_id)
    into v_final, v_final_errors
    from workflow.tasks t
    join unnest(fail_tasks.task_ids, fail_tasks.errors) as x (task_id, error) on x.task_id = t.task_id
    where t.task_id = any(v_locked) and t.status = 'started';
    perform workflow._fail_tasks_final(v_final, v_final_errors, fail_tasks.now);
    select v_outcomes || coalesce(jsonb_object_agg(f::text, 'failed'), '{}') into v_outcomes from unnest(v_final) as f;

    return query
    select i.task_id, coalesce(v_outcomes ->> i.task_id::text, 'stale')
    from unnest(fail_tasks.task_ids) with ordinality as i (task_id, ord)
    order by i.ord;
end;
$$;
