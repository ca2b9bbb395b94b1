-- complete_tasks: record the outputs of claimed tasks, in one transaction for the whole batch.
--
-- Called by workers (batched flushes) and by complete_task. Each element is (task_id, attempt,
-- output) where attempt is the token claim_tasks returned. A completion is accepted only if the
-- task is still 'started' under that same attempt; anything else (a duplicate, a worker whose
-- lease expired and whose task was claimed again, a task already swept by a failed run) is
-- ignored and reported with accepted = false, so a completion is never counted twice.
-- Accepted tasks' messages are deleted; a step whose last task this was completes with its
-- output (a single step: the task's output; a map step: the outputs in index order), and
-- _complete_steps advances the DAG.
-- Locks, in order: tasks (by task_id, FOR NO KEY UPDATE, only rows that match the token), their
-- queue messages (delete), the steps' step_states rows (by run_id, step_slug), then what
-- _complete_steps locks. claim_tasks only ever SKIPs locked tasks, so it never waits on us.
-- Errors: WF010 arrays of different lengths or a task id twice in one batch. Safe to repeat:
-- a second call with the same tokens reports accepted = false and changes nothing.
create or replace function workflow.complete_tasks(
    task_ids bigint[],
    attempts integer[],
    outputs jsonb[],
    now timestamptz default clock_timestamp()
)
returns table (task_id bigint, accepted boolean)
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
    v_accepted bigint[];
    v_queue record;
    v_done_runs uuid[];
    v_done_steps text[];
begin
    -- GUARD: well-formed batch
    if cardinality(complete_tasks.task_ids) is distinct from cardinality(complete_tasks.attempts)
        or cardinality(complete_tasks.task_ids) is distinct from cardinality(complete_tasks.outputs) then
        raise exception 'task_ids, attempts and outputs must have the same length' using errcode = 'WF010';
    end if;
    if (select count(distinct i) from unnest(complete_tasks.task_ids) as i) <> cardinality(complete_tasks.task_ids) then
        raise exception 'a task id appears twice in one batch' using errcode = 'WF010';
    end if;

    -- PHASE 1: accept the completions whose token matches
    perform 1
    from workflow.tasks t
    join unnest(complete_tasks.task_ids, complete_tasks.attempts) as i (task_id, attempt) on i.task_id = t.task_id
    where t.status = 'started' and t.attempts_count = i.attempt
    order by t.task_id
    for no key update of t;

    with upd as (
        update workflow.tasks t
        set status = 'completed',
            output = coalesce(i.output, 'null'::jsonb),
            completed_at = complete_tasks.now
        from unnest(complete_tasks.task_ids, complete_tasks.attempts, complete_tasks.outputs) as i (task_id, attempt, output)
        where t.task_id = i.task_id and t.status = 'started' and t.attempts_count = i.attempt
        returning t.task_id
    )
    select array_agg(upd.task_id) into v_accepted from upd;

    if v_accepted is not null then
        -- PHASE 2: their messages are done with
        for v_queue in
            select t.queue_name, array_agg(t.message_id) as ids
            from workflow.tasks t
            where t.task_id = any(v_accepted) and t.message_id is not null
            group by t.queue_name
        loop
            perform pgmq.delete(v_queue.queue_name, v_queue.ids);
        end loop;

        -- PHASE 3: count them off their steps (lock first, so the output aggregation below sees
        -- every task completed by transactions that held the row before us). A step that is no
        -- longer 'started' was failed by a sweep that skipped our locked task (cancel, deadline,
        -- a sibling's final failure): the completion still counts on it, so its tasks_completed
        -- matches its task rows, but only a 'started' step transitions.
        perform 1 from workflow.step_states s
        where (s.run_id, s.step_slug) in (select t.run_id, t.step_slug from workflow.tasks t where t.task_id = any(v_accepted))
        order by s.run_id, s.step_slug
        for no key update;

        with c as (
            select t.run_id, t.step_slug, count(*)::integer as n
            from workflow.tasks t where t.task_id = any(v_accepted)
            group by t.run_id, t.step_slug
        ),
        upd as (
            update workflow.step_states s
            set remaining_tasks = s.remaining_tasks - c.n,
                status = case when s.status = 'started' and s.remaining_tasks = c.n then 'completed' else s.status end,
                completed_at = case when s.status = 'started' and s.remaining_tasks = c.n then complete_tasks.now else s.completed_at end,
                output = case when s.status = 'started' and s.remaining_tasks = c.n then (
                    select case when st.step_type = 'map'
                        then coalesce(jsonb_agg(t.output order by t.task_index), '[]'::jsonb)
                        else (array_agg(t.output))[1] end
                    from workflow.tasks t
                    where t.run_id = s.run_id and t.step_slug = s.step_slug
                ) else s.output end
            from c, workflow.steps st
            where s.run_id = c.run_id and s.step_slug = c.step_slug and s.status in ('started', 'failed')
              and st.version_id = s.version_id and st.step_slug = s.step_slug
            returning s.run_id, s.step_slug, s.status
        )
        select array_agg(upd.run_id) filter (where upd.status = 'completed'),
               array_agg(upd.step_slug) filter (where upd.status = 'completed')
        into v_done_runs, v_done_steps
        from upd;

        -- PHASE 4: advance the DAG
        perform workflow._complete_steps(v_done_runs, v_done_steps, complete_tasks.now);
    end if;

    return query
    select i.task_id, coalesce(i.task_id = any(v_accepted), false)
    from unnest(complete_tasks.task_ids) with ordinality as i (task_id, ord)
    order by i.ord;
end;
$$;
