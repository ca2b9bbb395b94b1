-- _worker_alive: the one definition of a live worker: not stopped, not released by the sweep,
-- and its last heartbeat younger than its heartbeat timeout at `now`.
-- Called by list_workers, claim_tasks, get_run_status and _sweep. Pure; locks nothing.
create or replace function workflow._worker_alive(w workflow.workers, now timestamptz)
returns boolean
language sql
immutable
set search_path = ''
as $$
    select _worker_alive.w.stopped_at is null and _worker_alive.w.released_at is null
        and _worker_alive.w.heartbeat_at + make_interval(secs => _worker_alive.w.heartbeat_timeout_seconds) > _worker_alive.now;
$$;
