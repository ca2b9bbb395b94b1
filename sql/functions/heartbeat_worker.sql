-- heartbeat_worker: tell the engine a registered worker is still alive.
--
-- Called by a worker more often than its heartbeat timeout (a third of it is a good period).
-- Returns true when the worker is known and alive (its heartbeat moves to now); false when it is
-- unknown, deregistered, or was already dead (its heartbeat is older than its timeout): then
-- nothing changes, its leases are (or are about to be) released, and the worker must call
-- register_worker again before it claims (claim_tasks gives a dead registered worker nothing).
-- Locks: the worker's row. Errors: none. Safe to repeat.
create or replace function workflow.heartbeat_worker(
    worker_id text,
    now timestamptz default clock_timestamp()
)
returns boolean
language sql
set search_path = ''
as $$
    with beat as (
        update workflow.workers w
        set heartbeat_at = greatest(w.heartbeat_at, heartbeat_worker.now)
        where w.worker_id = heartbeat_worker.worker_id
          and workflow._worker_alive(w, heartbeat_worker.now)
        returning 1
    )
    select exists (select 1 from beat);
$$;
