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
as $$
declare
    v_task_ids bigint[];
    v_msg_ids bigint[];
    v_leases timestamptz[];
    v_exhausted bigint[];
    v_parked bigint;
    v_handlers jsonb;
    v_alive boolean;
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

    -- PHASE 1: lock and lease (see the header for why this is our own statement)
    execute format($sql$
        with msgs as materialized (
            select q.msg_id, (q.message ->> 'task_id')::bigint as task_id, (q.message ->> 'run_id')::uuid as run_id,
                (q.message ->> 'timeout')::integer as timeout
            from pgmq.%1$I as q
            where q.vt <= $1
              and ($2::jsonb is null or coalesce(q.message -> 'resources', '[]'::jsonb) <@ $2)
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
              and ($5::jsonb is null or coalesce(case jsonb_typeof($5 -> coalesce(q.message ->> 'flow', (
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
              and ($3::uuid is null or q.msg_id = any (array(
                  select t.message_id from workflow.tasks as t
                  where t.run_id = $3 and t.status in ('queued', 'started') and t.message_id is not null
              )))
            order by q.msg_id
            limit $4
            for update skip locked
        ),
        -- The runs are locked before their tasks, and a run held by a transaction failing,
        -- cancelling or pausing it is skipped whole: this claim then holds none of its tasks, so
        -- that transaction's sweep cannot miss one (it waits for claims that got the run first).
        live_runs as materialized (
            select r.run_id, r.paused_at is not null as paused
            from (select distinct m.run_id from msgs as m) as x
            join workflow.runs as r on r.run_id = x.run_id
            where (r.status = 'started') is true
            for key share of r skip locked
        ),
        cand as materialized (
            select m.msg_id, m.timeout, t.task_id,
                t.status = 'started' and t.attempts_count >= t.max_attempts as exhausted,
                lr.paused
            from msgs as m
            join workflow.tasks as t on t.task_id = m.task_id
            join live_runs as lr on lr.run_id = t.run_id
            where t.status in ('queued', 'started')
            for update of t skip locked
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
            from cand as c
            where q.msg_id = c.msg_id and not c.exhausted and not c.paused
            returning q.msg_id, q.vt
        )
        select array_agg(c.task_id order by c.task_id) filter (where not c.exhausted and not c.paused),
               array_agg(c.msg_id order by c.task_id) filter (where not c.exhausted and not c.paused),
               array_agg(l.vt order by c.task_id) filter (where not c.exhausted and not c.paused),
               array_agg(c.task_id order by c.task_id) filter (where c.exhausted and not c.paused),
               (select count(*) from parked)
        from cand as c left join leased as l on l.msg_id = c.msg_id
    $sql$, 'q_' || claim_tasks.queue_name)
    into v_task_ids, v_msg_ids, v_leases, v_exhausted, v_parked
    using claim_tasks.now, to_jsonb(claim_tasks.resources), claim_tasks.for_run_id, claim_tasks.qty, v_handlers;

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
