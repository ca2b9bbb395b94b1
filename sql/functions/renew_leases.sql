-- renew_leases: extend_leases, and for each task whether its run is paused.
--
-- Called by workers' lease-renewal thread and StepContext.heartbeat (through
-- Client.renew_leases) instead of extend_leases, so that a handler's context reads cancelled
-- while its run is paused. extended is extend_leases' answer for the (task_id, attempt), unchanged
-- (a paused run's leases are extended: its running tasks may finish and their results are kept);
-- run_paused = true: the task's run is paused now. Unknown tasks read false, false. Results in
-- input order. extend_leases itself is left as it is (its result is public).
-- Locks: what extend_leases locks (the queue messages); the tasks' and runs' rows are read
-- without a lock, by primary key. Errors: those of extend_leases (WF010). Safe to repeat.
create or replace function workflow.renew_leases(
    task_ids bigint[],
    attempts integer[],
    seconds integer,
    now timestamptz default clock_timestamp()
)
returns table (task_id bigint, extended boolean, run_paused boolean)
language sql
set search_path = ''
as $$
    select e.task_id, e.extended, coalesce(r.paused_at is not null, false)
    from workflow.extend_leases(
        renew_leases.task_ids, renew_leases.attempts, renew_leases.seconds, renew_leases.now
    ) with ordinality as e (task_id, extended, ord)
    left join workflow.tasks as t on t.task_id = e.task_id
    left join workflow.runs as r on r.run_id = t.run_id
    order by e.ord;
$$;
