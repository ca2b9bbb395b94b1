-- list_workers: the registered workers, live ones only unless include_dead.
--
-- Called by the CLI (`workers`), the dashboard and psql users. alive is true while the worker
-- has not stopped and its last heartbeat is younger than its timeout. Ordered by worker_id.
-- Locks nothing. Errors: none. Read-only.
create or replace function workflow.list_workers(
    include_dead boolean default false,
    now timestamptz default clock_timestamp()
)
returns table (
    worker_id text,
    host text,
    pid integer,
    queues text[],
    resources text[],
    handlers jsonb,
    version text,
    started_at timestamptz,
    heartbeat_at timestamptz,
    heartbeat_timeout_seconds integer,
    stopped_at timestamptz,
    alive boolean
)
language sql
stable
set search_path = ''
as $$
    select w.worker_id, w.host, w.pid, w.queues, w.resources, w.handlers, w.version, w.started_at,
        w.heartbeat_at, w.heartbeat_timeout_seconds, w.stopped_at, x.alive
    from workflow.workers w
    cross join lateral (select workflow._worker_alive(w, list_workers.now) as alive) as x
    where x.alive or coalesce(list_workers.include_dead, false)
    order by w.worker_id;
$$;
