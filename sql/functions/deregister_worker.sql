-- deregister_worker: a worker says it stops; its leases are released at once.
--
-- Called by a worker on shutdown (after it has reported what it finished) and by psql users.
-- Marks the worker stopped and makes the messages of the tasks it still holds (status
-- 'started', claimed with this worker id) visible now, so another worker claims them as the
-- next attempt, exactly as after a lease expiry (or fails them when the attempts are spent).
-- Runs whose local steps this worker owns fail at the next sweep (owner gone).
-- Returns the number of tasks released. Locks: the worker's row, then the released messages
-- (as _release_workers). Errors: none; an unknown id returns 0. Safe to repeat (0 the second time).
create or replace function workflow.deregister_worker(
    worker_id text,
    now timestamptz default clock_timestamp()
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_found boolean;
begin
    update workflow.workers w
    set stopped_at = coalesce(w.stopped_at, deregister_worker.now), released_at = deregister_worker.now
    where w.worker_id = deregister_worker.worker_id and w.released_at is null
    returning true into v_found;
    if v_found is null then
        return 0;
    end if;
    return workflow._release_workers(array[deregister_worker.worker_id], deregister_worker.now);
end;
$$;
