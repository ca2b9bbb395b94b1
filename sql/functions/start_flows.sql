-- start_flows: start many runs of one flow in one call; the batch form of start_flow.
--
-- Called by start_flow (a batch of one), by clients enqueuing many runs at once and by psql users.
-- inputs[i] is run i's input: a JSON object, or an array when the flow has a root map step.
-- run_ids (optional, same length) makes the call idempotent per run: a run id that already exists
-- for this flow with the same input is returned with created = false and nothing new is started
-- for it; with a different input the call is refused (WF012) and nothing changes. owner names the
-- worker id of the process that executes the runs' local steps (execute() passes its own); when
-- that owner dies, the runs fail (see _fail_dead_owners). version: the flow version number to run
-- (list_flow_versions); null, the default, runs the current version. The runs are pinned to it:
-- every later step reads that version's shape. Runs the throttled sweep first (_sweep).
-- Returns one row
-- per input, in input order: (run_id, created). Set-based throughout: one insert of runs, one of
-- step states, one _start_steps for the root steps of every new run, so the per-run cost is a
-- fraction of separate start_flow calls.
-- Locks: inserts the runs rows (a concurrent start of the same run id waits on the key), and the
-- flows row FOR KEY SHARE through the foreign key, so add_step cannot change the flow meanwhile.
-- Invariants: remaining_steps = number of steps; each step_state's remaining_deps = its number of
-- dependencies; root steps start in this transaction; run_started events are recorded.
-- Starting runs later or once (appended parameters, all optional):
--   idempotency_keys (one per input, null entries allowed): a start whose key was used for this
--     flow within dedupe_window (default 24 hours) returns that run with created = false (same
--     input) or is refused with WF030 (another input); outside the window it starts a new run
--     and the key points at it. Keys are per flow; prune removes keys whose window has ended.
--   debounce_key with debounce_interval and debounce_mode (one input only):
--     'debounce' (default): the run is created scheduled to start when the interval has been
--       quiet; a start with the same key while it waits replaces its input (the last input
--       wins), pushes its start back by the interval, and returns it with created = false;
--     'throttle': the first start runs now; starts with the same key within the interval after
--       it are dropped and return that first run (created = false), whatever their input.
--   start_at: the runs are created with status 'scheduled' (state 'scheduled' in get_run_status
--     and list_workflow_runs) and started by the sweep once start_at has come (within about a
--     second of it while the engine is being called); cancel_workflow_run cancels one before
--     it starts. A start_at that is not in the future starts the runs now (documented choice:
--     a clock skew of a caller must not turn a start into an error).
--   The run's timeout counts from its actual start.
-- Concurrency of keys: the key rows are upserted in key order; a concurrent start of the same
-- key waits on that row (ON CONFLICT takes its lock) and then returns the run it points at, so
-- 1,000 racing starts of 100 keys make exactly 100 runs.
-- Errors: WF002 unknown flow, WF020 unknown version, WF021 retired version, WF016 flow without
-- steps, WF009 an input of the wrong JSON type (the message names its position), WF010 run_ids of
-- another length or repeated, timeout below 1 s, WF012 a run id already used by another flow or
-- with another input, WF001 a malformed owner,
-- WF010 a priority outside -1000..1000,
-- WF025 an input whose value at the flow's key limit path is an object or an array.
-- concurrency_key: the runs' key for the flow's key concurrency limit (set_concurrency_limit
-- 'key'); without it each run's key is read from its input at the limit's path when claimed.
-- priority: the runs' priority (default 0, -1000..1000), added to each step's (set_step_priority);
-- it orders claims on ordered queues (set_queue_order).
-- WF019 a flow with local steps and no owner (nothing but the owner runs local steps).
-- WF030 an idempotency key of a live window reused with another input, WF010 a non-positive
-- dedupe_window or debounce_interval, an unknown debounce_mode, a debounce_key with several
-- inputs or with start_at, idempotency_keys of another length or repeated.
-- trace_context: the caller's W3C trace context (carrier headers as a JSON object), stored on each
-- new run (runs.trace_context) for the task spans of tracing; not interpreted here.
-- On error nothing is created.
create or replace function workflow.start_flows(
    flow_slug text,
    inputs jsonb[],
    run_ids uuid[] default null,
    timeout_seconds integer default null,
    now timestamptz default clock_timestamp(),
    owner text default null,
    concurrency_key text default null,
    priority integer default null,
    version integer default null,
    idempotency_keys text[] default null,
    dedupe_window interval default interval '24 hours',
    debounce_key text default null,
    debounce_interval interval default null,
    debounce_mode text default 'debounce',
    start_at timestamptz default null,
    trace_context jsonb default null
)
returns table (run_id uuid, created boolean)
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
    v_steps integer;
    v_root_map boolean;
    v_timeout integer;
    v_bad integer;
    v_ids uuid[];
    v_created uuid[];
    v_conflict record;
    v_key_path text[];
    v_vid bigint;
    v_retired timestamptz;
    v_start timestamptz := greatest(coalesce(start_flows.start_at, start_flows.now), start_flows.now);
    v_status text := 'started';
    v_kept text[];
    v_existing record;
begin
    perform workflow._sweep(start_flows.now);
    -- GUARD: the flow, the arrays, the inputs' JSON types, the owner
    if start_flows.owner is not null and start_flows.owner !~ '^[A-Za-z0-9_.:@/-]{1,200}$' then
        raise exception 'invalid owner worker id %', quote_literal(start_flows.owner)
            using errcode = 'WF001', hint = 'Use 1-200 characters among letters, digits and _ . : @ / -.';
    end if;
    select f.current_version_id into v_vid from workflow.flows f where f.flow_slug = start_flows.flow_slug;
    if not found then
        raise exception 'flow % does not exist', start_flows.flow_slug using errcode = 'WF002';
    end if;
    if start_flows.version is not null then
        select v.version_id into v_vid
        from workflow.flow_versions v where v.flow_slug = start_flows.flow_slug and v.version = start_flows.version;
        if not found then
            raise exception 'flow % has no version %', start_flows.flow_slug, start_flows.version
                using errcode = 'WF020', hint = 'list_flow_versions shows the versions a flow has.';
        end if;
    end if;
    select v.timeout_seconds, v.retired_at into v_timeout, v_retired from workflow.flow_versions v where v.version_id = v_vid;
    if v_retired is not null then
        raise exception 'version % of flow % is retired; it starts no new runs', start_flows.version, start_flows.flow_slug
            using errcode = 'WF021', hint = 'Start the current version (leave version out).';
    end if;
    select count(*), coalesce(bool_or(s.step_type = 'map' and s.deps_count = 0), false)
    into v_steps, v_root_map
    from workflow.steps s where s.version_id = v_vid;
    if v_steps = 0 then
        raise exception 'flow % has no steps', start_flows.flow_slug using errcode = 'WF016';
    end if;
    if start_flows.priority is not null and start_flows.priority not between -1000 and 1000 then
        raise exception 'priority must be between -1000 and 1000, got %', start_flows.priority using errcode = 'WF010';
    end if;
    -- A local step is run only by the process that started the run: without an owner nothing
    -- would ever run it, and nothing would notice that nobody can (WF019).
    if start_flows.owner is null and exists (
        select 1 from workflow.steps s where s.version_id = v_vid and s.execution = 'local'
    ) then
        raise exception 'flow % has local steps and the run has no owner', start_flows.flow_slug
            using errcode = 'WF019',
                hint = 'Local steps run in the process that executes the run: use execute() / execute_dynamic(), or mark the steps distributed.';
    end if;
    if start_flows.timeout_seconds is not null and start_flows.timeout_seconds < 1 then
        raise exception 'run timeout must be at least 1 second, got %', start_flows.timeout_seconds using errcode = 'WF010';
    end if;
    if coalesce(cardinality(start_flows.inputs), 0) = 0 then
        return;
    end if;
    if start_flows.run_ids is not null then
        if cardinality(start_flows.run_ids) <> cardinality(start_flows.inputs) then
            raise exception 'run_ids has % entries for % inputs', cardinality(start_flows.run_ids), cardinality(start_flows.inputs)
                using errcode = 'WF010';
        end if;
        if (select count(distinct i) from unnest(start_flows.run_ids) as i where i is not null)
            <> (select count(i) from unnest(start_flows.run_ids) as i) then
            raise exception 'a run id appears twice in one batch' using errcode = 'WF010';
        end if;
    end if;
    if start_flows.idempotency_keys is not null then
        if cardinality(start_flows.idempotency_keys) <> cardinality(start_flows.inputs) then
            raise exception 'idempotency_keys has % entries for % inputs', cardinality(start_flows.idempotency_keys), cardinality(start_flows.inputs)
                using errcode = 'WF010';
        end if;
        if (select count(distinct k) from unnest(start_flows.idempotency_keys) as k)
            <> (select count(k) from unnest(start_flows.idempotency_keys) as k) then
            raise exception 'an idempotency key appears twice in one batch' using errcode = 'WF010';
        end if;
        if start_flows.dedupe_window is null or start_flows.dedupe_window <= interval '0' then
            raise exception 'dedupe_window must be a positive interval, got %', coalesce(start_flows.dedupe_window::text, 'null')
                using errcode = 'WF010', hint = 'For example interval ''1 hour''.';
        end if;
    end if;
    if start_flows.debounce_key is not null then
        if start_flows.debounce_mode is null or start_flows.debounce_mode not in ('debounce', 'throttle') then
            raise exception 'unknown debounce_mode %', coalesce(quote_literal(start_flows.debounce_mode), 'null')
                using errcode = 'WF010', hint = 'Use debounce (the last input wins, the run starts when quiet) or throttle (the first start runs, the rest are dropped).';
        end if;
        if start_flows.debounce_interval is null or start_flows.debounce_interval <= interval '0' then
            raise exception 'debounce_interval must be a positive interval, got %', coalesce(start_flows.debounce_interval::text, 'null')
                using errcode = 'WF010', hint = 'For example interval ''30 seconds''.';
        end if;
        if cardinality(start_flows.inputs) <> 1 or start_flows.start_at is not null then
            raise exception 'a debounce_key coalesces single starts: give one input and no start_at'
                using errcode = 'WF010';
        end if;
    end if;
    select min(x.ord) into v_bad
    from unnest(start_flows.inputs) with ordinality as x (input, ord)
    where jsonb_typeof(x.input) is distinct from case when v_root_map then 'array' else 'object' end;
    if v_bad is not null then
        if v_root_map then
            raise exception 'flow % maps over its input, so each input must be a JSON array; input % is %',
                start_flows.flow_slug, v_bad, coalesce(jsonb_typeof(start_flows.inputs[v_bad]), 'null')
                using errcode = 'WF009';
        end if;
        raise exception 'run input must be a JSON object; input % is %', v_bad, coalesce(jsonb_typeof(start_flows.inputs[v_bad]), 'null')
            using errcode = 'WF009', hint = 'Wrap the value in an object, e.g. {"value": ...}.';
    end if;

    -- A key limit reads each run's key from its input: refuse one that is not a scalar there.
    if start_flows.concurrency_key is null
        and exists (select 1 from workflow.limits l where l.scope = 'key' and l.name = start_flows.flow_slug) then
        select x.ord, l.key_path into v_bad, v_key_path
        from unnest(start_flows.inputs) with ordinality as x (input, ord)
        join workflow.limits l on l.scope = 'key' and l.name = start_flows.flow_slug
        where jsonb_typeof(x.input #> l.key_path) in ('object', 'array')
        order by x.ord
        limit 1;
        if v_bad is not null then
            raise exception 'input % has a %, not a scalar, at the limit key path %', v_bad,
                jsonb_typeof(start_flows.inputs[v_bad] #> v_key_path), array_to_string(v_key_path, '.')
                using errcode = 'WF025', hint = 'Give the key at start (concurrency_key) or make the path name a string or number.';
        end if;
    end if;

    -- PHASE 1: the runs (idempotent per caller-supplied run id and per key)
    v_ids := array(
        select coalesce(start_flows.run_ids[x.ord], gen_random_uuid())
        from generate_subscripts(start_flows.inputs, 1) as x (ord)
        order by x.ord
    );
    if start_flows.start_at > start_flows.now then
        v_status := 'scheduled';
    end if;
    if start_flows.idempotency_keys is not null then
        -- A key whose window is live keeps its run: the upsert skips it (after waiting for a
        -- concurrent start of the same key to commit) and the run it points at is returned.
        with up as (
            insert into workflow.start_keys as k (flow_slug, key_kind, start_key, run_id, window_ends_at, created_at)
            select start_flows.flow_slug, 'idempotency', x.k, v_ids[x.ord], start_flows.now + start_flows.dedupe_window, start_flows.now
            from unnest(start_flows.idempotency_keys) with ordinality as x (k, ord)
            where x.k is not null
            order by x.k
            on conflict on constraint start_keys_pkey do update
            set run_id = excluded.run_id, window_ends_at = excluded.window_ends_at, created_at = excluded.created_at
            where k.window_ends_at <= excluded.created_at
            returning k.start_key
        )
        select array_agg(up.start_key) into v_kept from up;
        for v_existing in
            select x.ord, k.run_id, r.input is distinct from start_flows.inputs[x.ord] as other_input
            from unnest(start_flows.idempotency_keys) with ordinality as x (key, ord)
            join workflow.start_keys k
              on k.flow_slug = start_flows.flow_slug and k.key_kind = 'idempotency' and k.start_key = x.key
            join workflow.runs r on r.run_id = k.run_id
            where x.key is not null and not x.key = any(coalesce(v_kept, '{}'::text[]))
            order by x.ord
        loop
            if v_existing.other_input then
                raise exception 'idempotency key % was used for run % with another input (input %)',
                    quote_literal(start_flows.idempotency_keys[v_existing.ord]), v_existing.run_id, v_existing.ord
                    using errcode = 'WF030',
                    hint = 'Repeat a start with the same input to get the same run, or use a new key.';
            end if;
            v_ids[v_existing.ord] := v_existing.run_id;
        end loop;
    end if;
    if start_flows.debounce_key is not null then
        insert into workflow.start_keys as k (flow_slug, key_kind, start_key, run_id, window_ends_at, created_at)
        values (start_flows.flow_slug, start_flows.debounce_mode, start_flows.debounce_key, v_ids[1],
            start_flows.now + start_flows.debounce_interval, start_flows.now)
        on conflict on constraint start_keys_pkey do update
        set run_id = excluded.run_id, window_ends_at = excluded.window_ends_at, created_at = excluded.created_at
        where k.window_ends_at <= excluded.created_at;
        if not found then
            -- The key is live (its row is now locked by us). Throttle: drop this start. Debounce:
            -- fold it into the waiting run, unless that run was cancelled meanwhile.
            select k.run_id, r.status, r.cancelled_at into v_existing
            from workflow.start_keys k join workflow.runs r on r.run_id = k.run_id
            where k.flow_slug = start_flows.flow_slug and k.key_kind = start_flows.debounce_mode
              and k.start_key = start_flows.debounce_key
            for update of r;
            if start_flows.debounce_mode = 'throttle' then
                return query select v_existing.run_id, false;
                return;
            end if;
            if v_existing.status = 'scheduled' and v_existing.cancelled_at is null then
                update workflow.runs r
                set input = start_flows.inputs[1], start_at = start_flows.now + start_flows.debounce_interval,
                    started_at = start_flows.now + start_flows.debounce_interval,
                    -- the timeout still counts from the (now later) start
                    deadline_at = r.deadline_at + (start_flows.now + start_flows.debounce_interval - r.started_at)
                where r.run_id = v_existing.run_id;
                update workflow.start_keys k
                set window_ends_at = start_flows.now + start_flows.debounce_interval
                where k.flow_slug = start_flows.flow_slug and k.key_kind = 'debounce' and k.start_key = start_flows.debounce_key;
                return query select v_existing.run_id, false;
                return;
            end if;
            update workflow.start_keys k
            set run_id = v_ids[1], window_ends_at = start_flows.now + start_flows.debounce_interval, created_at = start_flows.now
            where k.flow_slug = start_flows.flow_slug and k.key_kind = 'debounce' and k.start_key = start_flows.debounce_key;
        end if;
        if start_flows.debounce_mode = 'debounce' then
            v_status := 'scheduled';
            v_start := start_flows.now + start_flows.debounce_interval;
        end if;
    end if;
    with ins as (
        insert into workflow.runs (run_id, flow_slug, version_id, status, remaining_steps, input, started_at, start_at,
            deadline_at, owner_worker_id, concurrency_key, priority, trace_context)
        select x.run_id, start_flows.flow_slug, v_vid, v_status, v_steps, x.input, v_start,
            case when v_status = 'scheduled' then v_start end,
            v_start + make_interval(secs => coalesce(start_flows.timeout_seconds, v_timeout)),
            start_flows.owner, start_flows.concurrency_key, coalesce(start_flows.priority, 0),
            start_flows.trace_context
        from unnest(v_ids, start_flows.inputs) as x (run_id, input)
        on conflict on constraint runs_pkey do nothing
        returning workflow.runs.run_id
    )
    select array_agg(ins.run_id) into v_created from ins;
    if coalesce(cardinality(v_created), 0) < cardinality(v_ids) then
        select r.run_id, r.flow_slug into v_conflict
        from unnest(v_ids) as x (run_id)
        join workflow.runs r on r.run_id = x.run_id
        where r.flow_slug <> start_flows.flow_slug
        limit 1;
        if found then
            raise exception 'run % already exists for flow %', v_conflict.run_id, v_conflict.flow_slug using errcode = 'WF012';
        end if;
        -- Same id, same flow, another input: not a repeat of the same request.
        select x.run_id, x.ord into v_conflict
        from unnest(v_ids, start_flows.inputs) with ordinality as x (run_id, input, ord)
        join workflow.runs r on r.run_id = x.run_id
        where not x.run_id = any(coalesce(v_created, '{}'::uuid[])) and r.input is distinct from x.input
        order by x.ord
        limit 1;
        if found then
            raise exception 'run % already exists with another input (input %)', v_conflict.run_id, v_conflict.ord
                using errcode = 'WF012',
                hint = 'Repeat a start with the same input to get the same run, or use a new run id.';
        end if;
    end if;

    if v_created is not null then
        -- PHASE 2: one state row per step of each new run, counting its dependencies (scheduled
        -- runs too: _start_due_runs then only starts their roots)
        insert into workflow.step_states (run_id, step_slug, flow_slug, version_id, remaining_deps)
        select x.run_id, s.step_slug, s.flow_slug, s.version_id, s.deps_count
        from unnest(v_created) as x (run_id)
        cross join workflow.steps s
        where s.version_id = v_vid;
    end if;

    if v_created is not null and v_status = 'started' then
        perform workflow._emit_events(
            v_created,
            array(select null::text from unnest(v_created)),
            array(select 'run_started' from unnest(v_created)),
            start_flows.now
        );

        -- PHASE 3: start the roots of every new run
        perform workflow._start_steps(
            array(select x.run_id from unnest(v_created) as x (run_id) cross join workflow.steps s
                  where s.version_id = v_vid and s.deps_count = 0 order by x.run_id, s.step_index),
            array(select s.step_slug from unnest(v_created) as x (run_id) cross join workflow.steps s
                  where s.version_id = v_vid and s.deps_count = 0 order by x.run_id, s.step_index),
            start_flows.now
        );
    end if;

    return query
    select x.run_id, x.run_id = any(coalesce(v_created, '{}'::uuid[]))
    from unnest(v_ids) with ordinality as x (run_id, ord)
    order by x.ord;
end;
$$;
