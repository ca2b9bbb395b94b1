-- extend_lease: extend one task's lease (the psql-friendly form of extend_leases).
--
-- Returns true when extended, false when the worker should stop (see extend_leases).
create or replace function workflow.extend_lease(
    task_id bigint,
    attempt integer,
    seconds integer,
    now timestamptz default clock_timestamp()
)
returns boolean
language sql
set search_path = ''
as $$
    select e.extended
    from workflow.extend_leases(
        array[extend_lease.task_id], array[extend_lease.attempt], extend_lease.seconds, extend_lease.now
    ) as e;
$$;
