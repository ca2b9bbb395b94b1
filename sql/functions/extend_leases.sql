-- extend_leases: push back the lease deadline of tasks a worker is still running.
--
-- Called by workers' lease-renewal thread (batched) and by extend_lease. Each (task_id,
-- attempt) whose task is still 'started' under that attempt gets its message's visibility
-- timeout set to now + seconds. extended = false tells the worker to stop: the task was
-- completed, failed, swept by a failed or cancelled run, or claimed again after this attempt's
-- lease expired (its completion would be ignored anyway).
-- Locks: the queue messages only (row locks for the update); never the task or run rows, so
-- renewals do not contend with completions.
-- Errors: WF010 arrays of different lengths or seconds < 1. Safe to repeat.
create or replace function workflow.extend_leases(
    task_ids bigint[],
    attempts integer[],
    seconds integer,
    now timestamptz default clock_timestamp()
)
returns table (task_id bigint, extended boolean)
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
    v_queue record;
    v_extended bigint[] := '{}'::bigint[];
    v_ids bigint[];
begin
    if cardinality(extend_leases.task_ids) is distinct from cardinality(extend_leases.attempts) then
        raise exception 'task_ids and attempts must have the same length' using errcode = 'WF010';
    end if;
    if extend_leases.seconds is null or extend_leases.seconds < 1 then
        raise exception 'a lease extension must be at least 1 second, got %', extend_leases.seconds using errcode = 'WF010';
    end if;

    for v_queue in
        select t.queue_name, array_agg(t.message_id) as msg_ids, array_agg(t.task_id) as ids
        from workflow.tasks t
        join unnest(extend_leases.task_ids, extend_leases.attempts) as i (task_id, attempt) on i.task_id = t.task_id
        where t.status = 'started' and t.attempts_count = i.attempt and t.message_id is not null
        group by t.queue_name
    loop
        execute format($sql$
            with upd as (
                update pgmq.%I as q set vt = $1 where q.msg_id = any($2) returning q.msg_id
            )
            select array_agg(x.task_id)
            from unnest($2, $3) as x (msg_id, task_id) join upd on upd.msg_id = x.msg_id
        $sql$, 'q_' || v_queue.queue_name)
        into v_ids
        using extend_leases.now + make_interval(secs => extend_leases.seconds), v_queue.msg_ids, v_queue.ids;
        v_extended := v_extended || coalesce(v_ids, '{}');
    end loop;

    return query
    select i.task_id, i.task_id = any(v_extended)
    from unnest(extend_leases.task_ids) with ordinality as i (task_id, ord)
    order by i.ord;
end;
$$;
