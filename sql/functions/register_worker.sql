-- register_worker: make a worker known to the engine, or refresh what it says about itself.
--
-- Called by a worker process when it starts (and by execute(), which registers the process that
-- runs a run's local steps), or by psql users. An upsert on worker_id: a repeated call updates
-- host, pid, queues, resources, handlers, version and the heartbeat timeout, and makes a worker
-- that had stopped or died live again (started_at is then reset: it is a new life of that id).
-- handlers is {"<flow_slug>": ["<step_slug>", ...]}: the steps the worker can run, in any
-- version of the flow; or, per version, {"<flow_slug>": {"<shape_hash>": ["<step_slug>", ...]}}
-- with the hashes of the definitions its code serves (flow_shape_hash, or register_flow_version's
-- shape_hash); the two forms mix freely across flows. claim_tasks with this worker_id then claims
-- only those steps' tasks (see _worker_handles). null means any step.
-- A worker is alive while it heartbeats (heartbeat_worker) more often than
-- heartbeat_timeout_seconds; after that the engine's sweep releases its leases at once.
-- Locks: the worker's row (insert or update). Errors: WF001 malformed worker id, WF010 a timeout
-- below 1 s or handlers of neither form. Safe to repeat.
create or replace function workflow.register_worker(
    worker_id text,
    host text default null,
    pid integer default null,
    queues text[] default null,
    resources text[] default '{}',
    handlers jsonb default null,
    version text default null,
    heartbeat_timeout_seconds integer default 30,
    now timestamptz default clock_timestamp()
)
returns workflow.workers
language plpgsql
set search_path = ''
as $$
declare
    v_row workflow.workers;
begin
    -- GUARD
    if register_worker.worker_id is null or register_worker.worker_id !~ '^[A-Za-z0-9_.:@/-]{1,200}$' then
        raise exception 'invalid worker id %', coalesce(quote_literal(register_worker.worker_id), 'null')
            using errcode = 'WF001', hint = 'Use 1-200 characters among letters, digits and _ . : @ / -.';
    end if;
    if register_worker.heartbeat_timeout_seconds is null or register_worker.heartbeat_timeout_seconds < 1 then
        raise exception 'heartbeat timeout must be at least 1 second, got %', register_worker.heartbeat_timeout_seconds
            using errcode = 'WF010';
    end if;
    if register_worker.handlers is not null and (
        jsonb_typeof(register_worker.handlers) <> 'object'
        or exists (
            select 1 from jsonb_each(register_worker.handlers) as h (flow, steps)
            where case jsonb_typeof(h.steps)
                when 'array' then exists (select 1 from jsonb_array_elements(h.steps) as e where jsonb_typeof(e) <> 'string')
                -- per version: {"<shape hash>": ["<step_slug>", ...], ...}
                when 'object' then exists (
                    select 1 from jsonb_each(h.steps) as v (shape_hash, vsteps)
                    where jsonb_typeof(v.vsteps) <> 'array'
                       or exists (select 1 from jsonb_array_elements(v.vsteps) as e where jsonb_typeof(e) <> 'string'))
                else true
            end
        )
    ) then
        raise exception 'handlers must be {"<flow_slug>": ["<step_slug>", ...]} or {"<flow_slug>": {"<shape_hash>": ["<step_slug>", ...]}}, got %',
            register_worker.handlers
            using errcode = 'WF010';
    end if;

    insert into workflow.workers as w (worker_id, host, pid, queues, resources, handlers, version, started_at,
        heartbeat_at, heartbeat_timeout_seconds)
    values (register_worker.worker_id, register_worker.host, register_worker.pid, register_worker.queues,
        coalesce(register_worker.resources, '{}'), register_worker.handlers, register_worker.version,
        register_worker.now, register_worker.now, register_worker.heartbeat_timeout_seconds)
    on conflict on constraint workers_pkey do update
    set host = excluded.host, pid = excluded.pid, queues = excluded.queues, resources = excluded.resources,
        handlers = excluded.handlers, version = excluded.version,
        heartbeat_timeout_seconds = excluded.heartbeat_timeout_seconds,
        heartbeat_at = excluded.heartbeat_at,
        -- A new life of the id when the old one had ended; a live worker keeps its start.
        started_at = case when w.released_at is not null or w.stopped_at is not null then excluded.started_at
                          else w.started_at end,
        stopped_at = null,
        released_at = null
    returning * into v_row;
    return v_row;
end;
$$;
