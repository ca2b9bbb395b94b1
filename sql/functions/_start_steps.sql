-- _start_steps: start steps whose dependencies are all complete: create their tasks and send
-- one pgmq message per task.
--
-- Called by start_flows (root steps of new runs; start_flow is its one-row form),
-- retry_failed_workflow (the steps a retried run starts with) and _complete_steps (steps made
-- ready), with parallel arrays of (run, step); every run given must be live. A single step gets
-- one task; a map step gets one task per element of the array it maps over (its map_over
-- dependency's output, or the run input for a root map step). A map over an empty array
-- completes at once with output [] and the completion cascades. A map over a non-array fails
-- the run. Control flow (docs/control-flow.md): a wait step gets no task; _start_waits consumes
-- an event kept for it (it completes here, and the completion cascades like an empty map's) or
-- records that it waits. A step with the sleep option gets its tasks with their messages
-- invisible until the wake time (_sleep_wake, kept in step_states.wake_at): a sleep holds no
-- claim and survives restarts, as a start delay does. A wait key or sleep path that does not
-- resolve fails the run, naming it. A step whose condition is false (_eval_condition), or one
-- of whose dependencies was skipped (unless it has run_if_skipped), is skipped instead: status
-- skipped, output null, no task; it counts as done, and the completion cascades (_complete_steps),
-- so its own dependents are skipped in turn. A map over a skipped step (with run_if_skipped)
-- maps over nothing: it completes with output [].
-- Each step's definition is read from its run's version (runs.version_id). A message carries the
-- version's shape hash ("version"), which the claim's handler filter matches.
-- In a paused run the messages are parked (vt = infinity) until the run is resumed.
-- Locks: the step_states rows it starts (already locked or new to the caller's transaction);
-- inserts tasks and queue messages. Sends one pg_notify per queue that gained work with no
-- start delay (identical notifications are folded by PostgreSQL within a transaction).
-- Invariants: each step is started once: callers only pass steps whose remaining_deps just
-- reached 0 in their own transaction, and status moves created -> started here.
-- Errors: none of its own (a non-array map source, an unresolvable wait key or sleep path fail
-- the run instead).
create or replace function workflow._start_steps(run_ids uuid[], step_slugs text[], now timestamptz)
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
    v_bad record;
    v_empty_runs uuid[];
    v_empty_steps text[];
    v_group record;
    v_waited_runs uuid[];
    v_waited_steps text[];
    v_skip_runs uuid[];
    v_skip_steps text[];
begin
    if coalesce(cardinality(_start_steps.run_ids), 0) = 0 then
        return;
    end if;

    -- PHASE 0: skipped steps (a false condition, or a skipped dependency). Only a version with a
    -- condition can have skipped steps, so a flow without one pays one index probe per step.
    select array_agg(x.run_id order by x.run_id, x.step_slug), array_agg(x.step_slug order by x.run_id, x.step_slug)
    into v_skip_runs, v_skip_steps
    from (
        select r.run_id, r.step_slug
        from unnest(_start_steps.run_ids, _start_steps.step_slugs) as r (run_id, step_slug)
        join workflow.runs ru on ru.run_id = r.run_id
        join workflow.steps st on st.version_id = ru.version_id and st.step_slug = r.step_slug
        where (ru.status = 'started') is true
          and exists (select 1 from workflow.steps c where c.version_id = ru.version_id and c.control ? 'condition')
          and (
              (not coalesce((st.control ->> 'run_if_skipped')::boolean, false) and exists (
                  select 1 from workflow.deps d
                  join workflow.step_states ds on ds.run_id = r.run_id and ds.step_slug = d.dep_slug
                  where d.version_id = ru.version_id and d.step_slug = r.step_slug and ds.status = 'skipped'))
              or (st.control ? 'condition' and not workflow._eval_condition(st.control -> 'condition', r.run_id, ru.input))
          )
    ) as x;
    if v_skip_runs is not null then
        update workflow.step_states s
        set status = 'skipped', remaining_tasks = 0, initial_tasks = 0, started_at = _start_steps.now,
            completed_at = _start_steps.now
        from unnest(v_skip_runs, v_skip_steps) as k (run_id, step_slug)
        where s.run_id = k.run_id and s.step_slug = k.step_slug and s.status = 'created';
        select coalesce(array_agg(r.run_id), '{}'), coalesce(array_agg(r.step_slug), '{}')
        into run_ids, step_slugs
        from unnest(_start_steps.run_ids, _start_steps.step_slugs) as r (run_id, step_slug)
        where (r.run_id, r.step_slug) not in (select * from unnest(v_skip_runs, v_skip_steps));
    end if;

    -- PHASE 1: a map step whose source is not an array fails its run
    for v_bad in
        select r.run_id, r.step_slug, st.map_over
        from unnest(_start_steps.run_ids, _start_steps.step_slugs) as r (run_id, step_slug)
        join workflow.runs ru on ru.run_id = r.run_id
        join workflow.steps st on st.version_id = ru.version_id and st.step_slug = r.step_slug
        where st.step_type = 'map'
          and jsonb_typeof(case when st.map_over is null then ru.input else (
              select case when ds.status = 'skipped' then '[]'::jsonb else ds.output end
              from workflow.step_states ds where ds.run_id = r.run_id and ds.step_slug = st.map_over
          ) end) is distinct from 'array'
    loop
        perform workflow._fail_runs(
            array[v_bad.run_id], array[v_bad.step_slug],
            array[format('map step %s expects an array from %s', v_bad.step_slug, coalesce(v_bad.map_over, 'the run input'))],
            _start_steps.now
        );
    end loop;

    -- PHASE 1b: a wait key or a sleep that does not resolve fails its run
    for v_bad in
        select r.run_id, r.step_slug,
            case when st.step_type = 'wait'
                then format('wait step %s: event_key %s is missing or not a scalar in the run input',
                            r.step_slug, st.control ->> 'event_key')
                else format('step %s: sleep %s is not a number of seconds or a timestamp',
                            r.step_slug, st.control ->> 'sleep')
            end as error
        from unnest(_start_steps.run_ids, _start_steps.step_slugs) as r (run_id, step_slug)
        join workflow.runs ru on ru.run_id = r.run_id
        join workflow.steps st on st.version_id = ru.version_id and st.step_slug = r.step_slug
        where st.control is not null and (ru.status = 'started') is true
          and ((st.step_type = 'wait' and workflow._wait_key(st.control, ru.run_id, ru.input) is null)
            or (st.control ? 'sleep' and workflow._sleep_wake(st.control -> 'sleep', ru.run_id, ru.input, _start_steps.now) is null))
    loop
        perform workflow._fail_runs(array[v_bad.run_id], array[v_bad.step_slug], array[v_bad.error], _start_steps.now);
    end loop;

    -- PHASE 2: size each step and mark it started (or completed, for an empty map)
    with ready as (
        select r.run_id, r.step_slug, st.step_type, ru.status as run_status,
            case when st.control ? 'sleep'
                then workflow._sleep_wake(st.control -> 'sleep', r.run_id, ru.input, _start_steps.now)
            end as wake_at,
            case when st.step_type in ('single', 'wait') then 1
                 else jsonb_array_length(case when st.map_over is null then ru.input else (
                     select case when ds.status = 'skipped' then '[]'::jsonb else ds.output end
                     from workflow.step_states ds where ds.run_id = r.run_id and ds.step_slug = st.map_over
                 ) end)
            end as n
        from unnest(_start_steps.run_ids, _start_steps.step_slugs) as r (run_id, step_slug)
        join workflow.runs ru on ru.run_id = r.run_id
        join workflow.steps st on st.version_id = ru.version_id and st.step_slug = r.step_slug
    ),
    upd as (
        update workflow.step_states s
        set status = case when ready.n = 0 then 'completed' else 'started' end,
            remaining_tasks = ready.n,
            initial_tasks = ready.n,
            started_at = _start_steps.now,
            completed_at = case when ready.n = 0 then _start_steps.now end,
            output = case when ready.n = 0 then '[]'::jsonb end,
            wake_at = ready.wake_at
        from ready
        where s.run_id = ready.run_id and s.step_slug = ready.step_slug
          and s.status = 'created' and (ready.run_status = 'started') is true
        returning s.run_id, s.step_slug, ready.n
    )
    select array_agg(upd.run_id) filter (where upd.n = 0), array_agg(upd.step_slug) filter (where upd.n = 0)
    into v_empty_runs, v_empty_steps
    from upd;

    -- PHASE 3: the tasks (map tasks carry their element, so a claim never re-reads the array)
    insert into workflow.tasks (run_id, step_slug, task_index, queue_name, max_attempts, item, queued_at)
    select s.run_id, s.step_slug, e.idx, st.queue_name, st.max_attempts, e.item, _start_steps.now
    from unnest(_start_steps.run_ids, _start_steps.step_slugs) as r (run_id, step_slug)
    join workflow.step_states s on s.run_id = r.run_id and s.step_slug = r.step_slug
    join workflow.runs ru on ru.run_id = r.run_id
    join workflow.steps st on st.version_id = s.version_id and st.step_slug = s.step_slug
    cross join lateral (
        select 0 as idx, null::jsonb as item where st.step_type = 'single'
        union all
        select (x.ord - 1)::integer, x.item
        from jsonb_array_elements(case when st.step_type = 'map' then
            case when st.map_over is null then ru.input else (
                select ds.output from workflow.step_states ds where ds.run_id = s.run_id and ds.step_slug = st.map_over
            ) end
        end) with ordinality as x (item, ord)
    ) as e
    where s.status = 'started' and (ru.status = 'started') is true
      and not exists (select 1 from workflow.tasks t where t.run_id = s.run_id and t.step_slug = s.step_slug);

    -- PHASE 4: one message per task, one send_batch per (queue, start delay)
    for v_group in
        select t.queue_name, st.start_delay_seconds as delay, ru.paused_at is not null as paused, s.wake_at,
            array_agg(t.task_id order by t.task_id) as task_ids,
            array_agg(jsonb_build_object(
                'task_id', t.task_id, 'run_id', t.run_id, 'flow', ru.flow_slug, 'version', fv.shape_hash,
                'step', t.step_slug, 'index', t.task_index,
                'timeout', st.timeout_seconds, 'max_attempts', st.max_attempts,
                'resources', to_jsonb(st.required_resources)
            ) order by t.task_id) as msgs
        from unnest(_start_steps.run_ids, _start_steps.step_slugs) as r (run_id, step_slug)
        join workflow.tasks t on t.run_id = r.run_id and t.step_slug = r.step_slug
        join workflow.step_states s on s.run_id = t.run_id and s.step_slug = t.step_slug
        join workflow.runs ru on ru.run_id = t.run_id
        join workflow.steps st on st.version_id = ru.version_id and st.step_slug = t.step_slug
        join workflow.flow_versions fv on fv.version_id = ru.version_id
        where t.message_id is null and t.status = 'queued'
        group by t.queue_name, st.start_delay_seconds, ru.paused_at is not null, s.wake_at
    loop
        -- send_batch inserts with INSERT ... SELECT unnest(msgs) RETURNING msg_id; ModifyTable
        -- emits RETURNING rows in the order it inserts them, which is the array order, so the
        -- n-th id belongs to the n-th message.
        update workflow.tasks t set message_id = m.msg_id
        from (
            select a.task_id, s.msg_id
            from unnest(v_group.task_ids) with ordinality as a (task_id, n)
            join pgmq.send_batch(v_group.queue_name, v_group.msgs) with ordinality as s (msg_id, n)
                on s.n = a.n
        ) as m
        where t.task_id = m.task_id;
        -- An ordered queue's messages get their tag (priority, aging, fairness): set_queue_order.
        if exists (select 1 from workflow.queue_orders o where o.queue_name = v_group.queue_name) then
            perform workflow._order_messages(v_group.queue_name, v_group.task_ids, _start_steps.now);
        end if;
        if v_group.paused or v_group.delay > 0 or v_group.wake_at > _start_steps.now then
            -- A paused run's new work is parked until resume_workflow_run releases it; a start
            -- delay is measured from this call's (injectable) clock, which send_batch's own
            -- delay argument would measure from clock_timestamp() instead.
            execute format(
                'update pgmq.%I set vt = $2 where msg_id in (select t.message_id from workflow.tasks t where t.task_id = any($1))',
                'q_' || v_group.queue_name
            ) using v_group.task_ids,
                case when v_group.paused then 'infinity'::timestamptz
                     else greatest(_start_steps.now + make_interval(secs => v_group.delay), v_group.wake_at) end;
        else
            perform pg_notify('workflow_q_' || v_group.queue_name, '');
        end if;
    end loop;

    -- PHASE 4b: wait steps consume an event kept for them (then they are complete) or wait
    select array_agg(w.run_id), array_agg(w.step_slug) into v_waited_runs, v_waited_steps
    from workflow._start_waits(_start_steps.run_ids, _start_steps.step_slugs, _start_steps.now) as w;
    if v_waited_runs is not null then
        v_empty_runs := coalesce(v_empty_runs, '{}') || v_waited_runs;
        v_empty_steps := coalesce(v_empty_steps, '{}') || v_waited_steps;
    end if;

    -- PHASE 5: empty maps, waits that found their event and skipped steps are done; cascade
    if v_skip_runs is not null then
        v_empty_runs := coalesce(v_empty_runs, '{}') || v_skip_runs;
        v_empty_steps := coalesce(v_empty_steps, '{}') || v_skip_steps;
    end if;
    if v_empty_runs is not null then
        perform workflow._complete_steps(v_empty_runs, v_empty_steps, _start_steps.now);
    end if;
end;
$$;
