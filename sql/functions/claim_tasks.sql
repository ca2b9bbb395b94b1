-- claim_tasks: claim up to qty tasks from one queue, in one round trip.
--
-- Called by workers (distributed queues) and by the executing process for its run's local steps
-- (queue 'local', for_run_id given). Returns each task with its claim token (attempt), its input
-- ({"run": run input, "<dependency>": its output, ...}; a map task's input leaves out the array it
-- maps over) and item (the map element; null for single steps), and the lease deadline.
--
-- How: one statement reads the head of the queue's pgmq table FOR UPDATE SKIP LOCKED, locks their
-- runs (FOR KEY SHARE SKIP LOCKED) and then those runs' tasks (FOR UPDATE SKIP LOCKED), and sets each
-- message's visibility timeout to now + the step's lease, as pgmq.read does (vt, read_ct,
-- last_read_at). We write that statement ourselves rather than call pgmq.read because the claim
-- must filter on the worker's resources and the run, lease each message by its own step's
-- timeout, and lock the task rows in the same statement; the table is pgmq's own format, so any
-- pgmq client still sees the same queue.
-- A message that is visible again while its task is still 'started' is a crashed attempt (the
-- lease expired): it is claimed again as the next attempt, or, when the step's attempts are spent,
-- the task fails (and with it the step and the run) with a lease-expiry error.
-- Tasks of a paused run are not claimed; a message of one that is visible is parked (vt = infinity)
-- until resume_workflow_run releases it.
-- Locks, in this order: queue messages, their runs FOR KEY SHARE, then the runs' tasks, all SKIP
-- LOCKED, so a claim never waits. A run held FOR UPDATE (being failed, cancelled or paused) is
-- passed over with all its tasks; a run whose key share we got makes that transaction wait for
-- this claim to commit, so its sweep sees what we claimed. The rare exhausted-lease path then
-- locks like fail_tasks.
-- Workers: with the worker_id of a registered worker (register_worker), only tasks of the steps
-- in its handlers are claimed (per flow, or per flow version: see _worker_handles), and a
-- registered worker that is dead or stopped claims nothing. A worker_id that is not registered,
-- or null, claims any step (psql users). Each call first runs the throttled sweep (_sweep: dead
-- workers' leases, dead owners, deadlines).
-- Concurrency limits (set_concurrency_limit): when a limit applies to the queue, the claim first
-- takes a transaction-level advisory lock, without waiting (pg_try_advisory_xact_lock), on each
-- (limit, key) that the visible head of the queue touches, then decides in the leasing statement,
-- whose snapshot is taken after those locks are held: for each (limit, key) it counts the tasks
-- still 'started' among its slot records (concurrency_slots), ranks the candidates by message id
-- and starts only those within max_running. Every claim that starts a task under a key holds that
-- key's lock until it commits, so the count sees every earlier start: the limit is exact across
-- any number of connections (in READ COMMITTED, the default; a claim inside a REPEATABLE READ
-- transaction would count from its transaction's snapshot). A task whose key another claim holds
-- is left visible for the next claim; one over its limit gets a visibility of now + 1 s, so
-- workers do not re-read it in a loop. Slots are never freed by hand: a task counts while its
-- status is 'started', so completion, failure, cancel and pruning all free it, and a task whose
-- lease expired keeps its slot until it is claimed again (it then reuses it) or fails for good.
-- Without any limit on the queue's work the claim is the one statement as before.
-- Plans: the queue's table name makes both statements dynamic, and a dynamic statement is planned
-- at every EXECUTE: with its fifteen CTEs the lock-and-lease statement took longer to plan than to
-- run (pg_stat_statements, 2,000-task worker drain, claims of 10: 9.0 ms planning against 2.4 ms
-- execution per claim, on a loaded machine). So each is PREPAREd once per session, under a name
-- made from the md5 of its text (one per queue and order; an upgraded function text gets a new
-- name), and EXECUTEd with its arguments as quoted literals (format %L: a utility EXECUTE cannot
-- take USING parameters). What decides the plan's shape (resources, handlers or a run given or
-- not, limits or not) is written into the text as constants, so the generic plan drops the
-- branches that cannot apply, as a plan made for the values did (a generic plan with them as
-- parameters ran 5-9x slower); the plan cache keeps its generic plan and replans it after DDL on the
-- tables it reads, as for any prepared statement. A session that ran DEALLOCATE (or DISCARD ALL,
-- as a pooler's reset does) has it prepared again by its next claim.
-- Order: oldest message first (msg_id), or, on a queue made ordered by set_queue_order, lowest
-- ordering tag first (priority with aging, fairness across keys; see _order_messages).
-- Errors: WF001 bad queue name, WF010 bad qty or a local claim without for_run_id. An unknown queue
-- returns no rows (a worker may start before any flow that uses its queue is registered).
create or replace function workflow.claim_tasks(
    queue_name text,
    qty integer default 10,
    worker_id text default null,
    resources text[] default null,
    for_run_id uuid default null,
    now timestamptz default clock_timestamp()
)
returns table (
    task_id bigint,
    attempt integer,
    run_id uuid,
    flow_slug text,
    step_slug text,
    task_index integer,
    input jsonb,
    item jsonb,
    lease_expires_at timestamptz
)
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
    v_task_ids bigint[];
    v_msg_ids bigint[];
    v_leases timestamptz[];
    v_exhausted bigint[];
    v_parked bigint;
    v_handlers jsonb;
    v_alive boolean;
    v_limited boolean;
    v_locked text[];
    v_order text := 'q.msg_id';
    v_sql text;
    v_name text;
begin
    -- GUARD
    perform workflow._validate_name('queue', claim_tasks.queue_name);
    if claim_tasks.qty is null or claim_tasks.qty < 1 or claim_tasks.qty > 1000 then
        raise exception 'qty must be between 1 and 1000, got %', claim_tasks.qty using errcode = 'WF010';
    end if;
    if claim_tasks.queue_name = 'local' and claim_tasks.for_run_id is null then
        raise exception 'claiming local tasks needs the run_id of the run being executed'
            using errcode = 'WF010', hint = 'Local steps are run by the process that executes the run.';
    end if;
    -- Housekeeping first (throttled; see _sweep): a dead worker's messages released here are
    -- claimable by this very call.
    perform workflow._sweep(claim_tasks.now);
    if not exists (select 1 from pgmq.meta m where m.queue_name = claim_tasks.queue_name) then
        return;
    end if;
    -- A registered worker claims only what it has handlers for (null handlers: anything); a
    -- registered worker that is dead or stopped claims nothing, since its leases are being
    -- released (heartbeat_worker returns false and it must register again).
    if claim_tasks.worker_id is not null then
        select w.handlers, workflow._worker_alive(w, claim_tasks.now) into v_handlers, v_alive
        from workflow.workers w where w.worker_id = claim_tasks.worker_id;
        if v_alive is false then
            return;
        end if;
    end if;

    -- An ordered queue (set_queue_order) is taken lowest tag first, through its tag index.
    if exists (select 1 from workflow.queue_orders o where o.queue_name = claim_tasks.queue_name) then
        v_order := '((q.message ->> ''ord'')::double precision), q.msg_id';
    end if;

    -- PHASE 0: with limits, lock the (limit, key) pairs of the visible head (see the header).
    -- Twice qty messages are read (without locking them) so that keys of messages other claims
    -- hold do not leave this claim's batch without locks.
    v_limited := exists (
        select 1 from workflow.limits l
        where l.scope <> 'queue' or l.name = claim_tasks.queue_name
    );
    if v_limited then
        v_sql := format($sql$
            select coalesce(array_agg(k.lock_key), '{}')
            from (
                select distinct l.limit_id || ':' || lk.key as lock_key
                from (
                    select q.message from pgmq.%1$I as q where q.vt <= $1 order by %2$s limit $2
                ) as m
                join workflow.runs as r on r.run_id = (m.message ->> 'run_id')::uuid
                join workflow.limits as l
                    on (l.scope = 'queue' and l.name = $3)
                    or (l.scope in ('flow', 'key') and l.name = r.flow_slug)
                    or (l.scope = 'step' and l.name = r.flow_slug || '.' || (m.message ->> 'step'))
                cross join lateral (
                    select case when l.scope = 'key' then coalesce(r.concurrency_key, r.input #>> l.key_path, '') else '' end as key
                ) as lk
            ) as k
            where pg_try_advisory_xact_lock(hashtext('workflow.limits'), hashtext(k.lock_key))
        $sql$, 'q_' || claim_tasks.queue_name, v_order);
        v_name := 'workflow_claim_keys_' || md5(v_sql);
        if not exists (select 1 from pg_catalog.pg_prepared_statements p where p.name = v_name) then
            execute format('prepare %I (timestamptz, integer, text) as %s', v_name, v_sql);
        end if;
        execute format('execute %I (%L, %L, %L)', v_name, claim_tasks.now, 2 * claim_tasks.qty,
            claim_tasks.queue_name)
        into v_locked;
    end if;

    -- PHASE 1: lock and lease (see the header for why this is our own statement, and for why it
    -- is a prepared statement)
    v_sql := format($sql$
        with msgs as materialized (
            select q.msg_id, (q.message ->> 'task_id')::bigint as task_id, (q.message ->> 'run_id')::uuid as run_id,
                (q.message ->> 'timeout')::integer as timeout
            from pgmq.%1$I as q
            where q.vt <= $1
              and (%3$s or coalesce(q.message -> 'resources', '[]'::jsonb) <@ $2)
              -- The handler filter sits inside the locking scan, before the limit, so a head of
              -- messages this worker cannot serve never hides servable ones behind it. Two
              -- binary-searched jsonb lookups per message; messages sent before 0007 carry no
              -- "flow" and take it from their run. Measured (pgbench, one client, 3 x 400
              -- transactions of claim 10 + delete, handlers of 21 flows): 2.95 ms with the filter,
              -- 2.84 ms without, inside the run-to-run spread of 2.5-3.4 ms. What it does cost is
              -- a head of unservable visible messages, re-read by every claim of that worker:
              -- 1000 of them took a claim to 6-10 ms (a few microseconds each).
              -- Versions (0008): handlers name steps per flow ({"flow": ["step", ...]}: any
              -- version) or per flow version ({"flow": {"<shape hash>": ["step", ...]}}); the
              -- message carries its version's hash, messages sent before 0008 take it from their
              -- run. This is workflow._worker_handles written out: a function with SET is never
              -- inlined, and a call per scanned message would cost more than the lookups.
              and (%4$s or coalesce(case jsonb_typeof($5 -> coalesce(q.message ->> 'flow', (
                  select r.flow_slug from workflow.runs as r where r.run_id = (q.message ->> 'run_id')::uuid
              )))
                  when 'array' then $5 -> coalesce(q.message ->> 'flow', (
                      select r.flow_slug from workflow.runs as r where r.run_id = (q.message ->> 'run_id')::uuid
                  )) ? (q.message ->> 'step')
                  when 'object' then $5 -> coalesce(q.message ->> 'flow', (
                      select r.flow_slug from workflow.runs as r where r.run_id = (q.message ->> 'run_id')::uuid
                  )) -> coalesce(q.message ->> 'version', (
                      select v.shape_hash from workflow.runs as r join workflow.flow_versions as v on v.version_id = r.version_id
                      where r.run_id = (q.message ->> 'run_id')::uuid
                  )) ? (q.message ->> 'step')
              end, false))
              and (%5$s or q.msg_id = any (array(
                  select t.message_id from workflow.tasks as t
                  where t.run_id = $3 and t.status in ('queued', 'started') and t.message_id is not null
              )))
            order by %2$s
            limit $4
            for update skip locked
        ),
        -- The runs are locked before their tasks, and a run held by a transaction failing,
        -- cancelling or pausing it is skipped whole: this claim then holds none of its tasks, so
        -- that transaction's sweep cannot miss one (it waits for claims that got the run first).
        live_runs as materialized (
            select r.run_id, r.paused_at is not null as paused, r.flow_slug, r.concurrency_key, r.input
            from (select distinct m.run_id from msgs as m) as x
            join workflow.runs as r on r.run_id = x.run_id
            where (r.status = 'started') is true
            for key share of r skip locked
        ),
        cand as materialized (
            select m.msg_id, m.timeout, t.task_id, t.run_id, t.step_slug, t.status = 'started' as reclaim,
                t.status = 'started' and t.attempts_count >= t.max_attempts as exhausted,
                lr.paused, lr.flow_slug, lr.concurrency_key, lr.input
            from msgs as m
            join workflow.tasks as t on t.task_id = m.task_id
            join live_runs as lr on lr.run_id = t.run_id
            where t.status in ('queued', 'started')
            for update of t skip locked
        ),
        -- Limits ($6: some limit applies; $7: the (limit, key) locks held): each candidate's
        -- (limit, key) pairs, the use of each (live slots of a concurrency limit, starts inside
        -- a rate limit's window), and the verdict: a candidate starts when this claim holds all
        -- its pairs' locks and its rank (by message id) within each pair fits what is left.
        -- Cost (bench/flow_control.py): the candidates and the limits are few, but the planner
        -- sees one row in each CTE and, hash joins being off, joins CTEs by nested loops; so the
        -- run's columns come along from live_runs (no second probe of runs), the limits that can
        -- apply are read once (lims), the candidates' task ids are one array for the anti-joins,
        -- and the slots to write come from the verdict's own arrays, not from a join back.
        lims as materialized (
            select l.limit_id, l.kind, l.scope, l.name, l.key_path, l.max_count, l.per_seconds
            from workflow.limits as l
            where %6$s and (l.scope <> 'queue' or l.name = $8)
            -- the order lets the planner read the (small) table by its primary key: a scan it
            -- would otherwise make carries the disabled-seqscan cost, which sets off JIT
            order by l.limit_id
        ),
        cand_ids as materialized (
            select coalesce(array_agg(c.task_id), '{}') as ids from cand as c
        ),
        ckeys as materialized (
            select c.msg_id, c.task_id, c.reclaim, l.limit_id, l.kind, l.max_count, l.per_seconds, lk.key,
                l.limit_id || ':' || lk.key = any ($7) as held
            from cand as c
            join lims as l
                on l.scope = 'queue'
                or (l.scope in ('flow', 'key') and l.name = c.flow_slug)
                or (l.scope = 'step' and l.name = c.flow_slug || '.' || c.step_slug)
            cross join lateral (
                select case when l.scope = 'key' then coalesce(c.concurrency_key, c.input #>> l.key_path, '') else '' end as key
            ) as lk
            where not c.exhausted and not c.paused
        ),
        held_keys as materialized (
            select distinct k.limit_id, k.kind, k.per_seconds, k.key from ckeys as k where k.held
        ),
        used as materialized (
            -- Concurrency: a candidate already 'started' is a crashed attempt claimed again: its
            -- own slot is not counted, it reuses it. Rate: the starts inside the window, oldest
            -- first (a task that cannot start waits until the oldest leaves the window).
            select h.limit_id, h.key, case when h.kind = 'concurrency' then (
                select count(*)
                from workflow.concurrency_slots as s
                join workflow.tasks as t on t.task_id = s.task_id
                where s.limit_id = h.limit_id and s.key = h.key and t.status = 'started'
                  and not s.task_id = any ((select ci.ids from cand_ids as ci)::bigint[])
            ) else coalesce(cardinality(w.starts), 0) end as n,
                w.starts
            from held_keys as h
            left join lateral (
                select array(
                    select x.at from unnest(rw.starts) as x (at)
                    where x.at > $1 - make_interval(secs => h.per_seconds::double precision)
                    order by x.at
                ) as starts
                from workflow.rate_windows as rw
                where h.kind = 'rate' and rw.limit_id = h.limit_id and rw.key = h.key
            ) as w on true
        ),
        verdict as materialized (
            select k.msg_id, bool_and(k.held) as held, coalesce(bool_or(u.n + k.rn > k.max_count), false) as is_full,
                array_agg(k.limit_id) filter (where k.kind = 'concurrency') as slot_limits,
                array_agg(k.key) filter (where k.kind = 'concurrency') as slot_keys,
                min(k.task_id) as task_id,
                max(case
                    when k.kind = 'concurrency' then $1 + interval '1 second'
                    -- the start whose leaving the window frees this task's place
                    else coalesce(u.starts[u.n + k.rn - k.max_count], $1) + make_interval(secs => k.per_seconds::double precision)
                end) filter (where u.n + k.rn > k.max_count) as wake_at
            from (
                -- Crashed attempts claimed again rank first: their own slots are not in n, so they
                -- must be the ones to take the places (a new task must not pass one that still
                -- counts as started).
                select k.*, row_number() over (partition by k.limit_id, k.key order by k.reclaim desc, k.msg_id) as rn
                from ckeys as k
            ) as k
            left join used as u on u.limit_id = k.limit_id and u.key = k.key
            group by k.msg_id
        ),
        go as materialized (
            select c.*,
                not c.exhausted and not c.paused and coalesce(v.held and not v.is_full, true) as granted,
                case when not c.exhausted and not c.paused and v.held and v.is_full then v.wake_at end as wake_at
            from cand as c
            left join verdict as v on v.msg_id = c.msg_id
        ),
        slotted as (
            -- a verdict that holds and is not full is a granted task (ckeys has no exhausted or
            -- paused candidate)
            insert into workflow.concurrency_slots (limit_id, key, task_id)
            select s.limit_id, s.key, v.task_id
            from verdict as v
            cross join lateral unnest(v.slot_limits, v.slot_keys) as s (limit_id, key)
            where v.held and not v.is_full
            on conflict do nothing
            returning 1
        ),
        cleared as (
            -- Slots of finished tasks under the keys this claim holds (no one else writes them now).
            delete from workflow.concurrency_slots as s
            using held_keys as h
            where h.kind = 'concurrency' and s.limit_id = h.limit_id and s.key = h.key
              and not exists (select 1 from workflow.tasks as t where t.task_id = s.task_id and t.status = 'started')
              and not s.task_id = any ((select ci.ids from cand_ids as ci)::bigint[])
            returning 1
        ),
        windowed as (
            -- The window keeps its starts still inside it plus one start at now per task started.
            insert into workflow.rate_windows as rw (limit_id, key, starts)
            select u.limit_id, u.key, coalesce(u.starts, '{}') || array(
                select $1 from ckeys as k join go as g on g.msg_id = k.msg_id
                where g.granted and k.limit_id = u.limit_id and k.key = u.key
            )
            from used as u
            join held_keys as h on h.limit_id = u.limit_id and h.key = u.key
            where h.kind = 'rate'
            on conflict on constraint rate_windows_pkey do update set starts = excluded.starts
            returning 1
        ),
        waiting as (
            update pgmq.%1$I as q
            set vt = g.wake_at
            from go as g
            where q.msg_id = g.msg_id and g.wake_at is not null
            returning q.msg_id
        ),
        parked as (
            -- Work of a paused run that became visible (a lease that expired while paused) is
            -- parked, so the next claims do not read it again and again.
            update pgmq.%1$I as q
            set vt = 'infinity'
            from cand as c
            where q.msg_id = c.msg_id and c.paused
            returning q.msg_id
        ),
        leased as (
            update pgmq.%1$I as q
            set vt = $1 + make_interval(secs => c.timeout), read_ct = q.read_ct + 1, last_read_at = $1
            from go as c
            where q.msg_id = c.msg_id and c.granted
            returning q.msg_id, q.vt
        )
        select array_agg(c.task_id order by c.task_id) filter (where c.granted),
               array_agg(c.msg_id order by c.task_id) filter (where c.granted),
               array_agg(l.vt order by c.task_id) filter (where c.granted),
               array_agg(c.task_id order by c.task_id) filter (where c.exhausted and not c.paused),
               (select count(*) from parked)
        from go as c left join leased as l on l.msg_id = c.msg_id
    $sql$, 'q_' || claim_tasks.queue_name, v_order,
        -- The call's shape is written into the text (so into the name), not passed: a generic
        -- plan folds these constants away as a one-shot plan of the values did.
        (claim_tasks.resources is null)::text, (v_handlers is null)::text,
        (claim_tasks.for_run_id is null)::text, coalesce(v_limited, false)::text);
    v_name := 'workflow_claim_' || md5(v_sql);
    if not exists (select 1 from pg_catalog.pg_prepared_statements p where p.name = v_name) then
        execute format('prepare %I (timestamptz, jsonb, uuid, integer, jsonb, boolean, text[], text) as %s',
            v_name, v_sql);
    end if;
    execute format('execute %I (%L, %L, %L, %L, %L, %L, %L, %L)', v_name, claim_tasks.now,
        to_jsonb(claim_tasks.resources), claim_tasks.for_run_id, claim_tasks.qty, v_handlers,
        v_limited, v_locked, claim_tasks.queue_name)
    into v_task_ids, v_msg_ids, v_leases, v_exhausted, v_parked;

    -- PHASE 2: crashed attempts with no attempts left fail their step and run
    if v_parked > 0 then
        raise debug 'claim_tasks parked % message(s) of paused runs on queue %', v_parked, claim_tasks.queue_name;
    end if;
    if v_exhausted is not null then
        perform workflow._fail_tasks_final(
            v_exhausted,
            array(select 'lease expired on the last attempt (worker crashed or lost its connection)' from unnest(v_exhausted)),
            claim_tasks.now
        );
    end if;
    if v_task_ids is null then
        return;
    end if;

    -- PHASE 3: start the claimed tasks; the attempt number is the claim token. The status check
    -- matters: if phase 2 failed a run, its sweep has already failed that run's other tasks,
    -- including ones this claim had picked; those are not handed out.
    with started as (
        update workflow.tasks t
        set status = 'started',
            attempts_count = t.attempts_count + 1,
            started_at = claim_tasks.now,
            worker_id = claim_tasks.worker_id,
            message_id = c.msg_id
        from unnest(v_task_ids, v_msg_ids) as c (task_id, msg_id)
        where t.task_id = c.task_id and t.status in ('queued', 'started')
        returning t.task_id
    )
    select array_agg(c.task_id order by c.task_id), array_agg(c.lease order by c.task_id)
    into v_task_ids, v_leases
    from unnest(v_task_ids, v_leases) as c (task_id, lease)
    where c.task_id in (select started.task_id from started);
    if v_task_ids is null then
        return;
    end if;

    -- PHASE 4: hand them out with their assembled input
    return query
    select t.task_id, t.attempts_count, t.run_id, r.flow_slug, t.step_slug, t.task_index,
        jsonb_build_object('run', r.input) || coalesce((
            select jsonb_object_agg(d.dep_slug, ds.output)
            from workflow.deps d
            join workflow.step_states ds on ds.run_id = t.run_id and ds.step_slug = d.dep_slug
            where d.version_id = r.version_id and d.step_slug = t.step_slug
              and d.dep_slug is distinct from st.map_over
        ), '{}'::jsonb),
        t.item,
        c.lease
    from unnest(v_task_ids, v_leases) as c (task_id, lease)
    join workflow.tasks t on t.task_id = c.task_id
    join workflow.runs r on r.run_id = t.run_id
    join workflow.steps st on st.version_id = r.version_id and st.step_slug = t.step_slug
    order by t.task_id;
end;
$$;
