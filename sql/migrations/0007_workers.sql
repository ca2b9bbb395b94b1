-- 0007_workers: workers are rows; runs name the process that executes their local steps.
--
-- workers: one row per worker process (or psql session) that registered with register_worker.
-- It is the one place the engine learns who can do what: claim_tasks filters a registered
-- worker's claims by its handlers, get_run_status says which steps wait for a worker that does
-- not exist, and the sweep (workflow._sweep, run from the engine's own calls) releases the
-- leases of a worker whose heartbeat is older than its timeout at once, instead of at lease
-- expiry. A worker is alive while stopped_at is null and heartbeat_at + heartbeat_timeout is in
-- the future; released_at records that the sweep has released a dead worker's leases (so it does
-- so once). Rows stay after death (list_workers(include_dead => true) shows them);
-- register_worker with the same id makes the row live again.
--
-- handlers: the steps the worker can run, as {"<flow_slug>": ["<step_slug>", ...], ...}; null
-- means "any step" (a psql user, or a worker that does not say). A JSON object keyed by flow
-- because the claim's filter is then two binary-searched lookups per message (`h -> flow ?
-- step`), whatever the number of flows a worker serves.
--
-- runs.owner_worker_id: the worker id of the process that executes the run's local steps
-- (execute() registers itself and passes it to start_flow). When that owner is dead
-- (deregistered, heartbeat older than its timeout, or never registered within the grace of
-- runs_owner_grace below) the sweep fails the run naming the owner.
--
-- sweeps: one row, the time of the last throttled sweep (at most one per second per database).
--
-- The function signatures that gained parameters are dropped here so that the reload creates
-- them afresh instead of adding an overload that would make every existing call ambiguous.

create table workflow.workers (
    worker_id text primary key,
    host text,
    pid integer,
    -- Queues it claims from; null: not said (psql users).
    queues text[],
    resources text[] not null default '{}',
    handlers jsonb,
    version text,
    started_at timestamptz not null default now(),
    heartbeat_at timestamptz not null default now(),
    heartbeat_timeout_seconds integer not null default 30,
    stopped_at timestamptz,
    released_at timestamptz,
    constraint worker_id_is_valid check (worker_id ~ '^[A-Za-z0-9_.:@/-]{1,200}$'),
    constraint heartbeat_timeout_is_positive check (heartbeat_timeout_seconds >= 1),
    constraint handlers_is_an_object check (handlers is null or jsonb_typeof(handlers) = 'object')
);

create table workflow.sweeps (
    sweep_id integer primary key default 1,
    swept_at timestamptz not null default '-infinity',
    constraint sweeps_has_one_row check (sweep_id = 1)
);
insert into workflow.sweeps (sweep_id) values (1);

alter table workflow.runs add column owner_worker_id text;
-- The sweep finds the live runs that have an owner without scanning the others.
create index runs_owner_idx on workflow.runs (owner_worker_id)
where owner_worker_id is not null and status = 'started';


drop function if exists workflow.start_flow(text, jsonb, uuid, integer, timestamptz);
drop function if exists workflow.start_flows(text, jsonb[], uuid[], integer, timestamptz);
drop function if exists workflow.retry_failed_workflow(uuid, boolean, boolean, timestamptz);
drop function if exists workflow.fail_tasks(bigint[], integer[], text[], timestamptz);
drop function if exists workflow.fail_task(bigint, integer, text, timestamptz);
drop function if exists workflow.get_run_status(uuid);
