-- fail_task: report one failed attempt (the psql-friendly form of fail_tasks).
--
-- retryable => false: a permanent failure, the task fails at once without spending its
-- remaining attempts. Returns 'retry', 'failed' or 'stale' as fail_tasks does. Locks and invariants: fail_tasks.
create or replace function workflow.fail_task(
    task_id bigint,
    attempt integer,
    error text,
    now timestamptz default clock_timestamp(),
    retryable boolean default true
)
returns text
language sql
set search_path = ''
as $$
    select f.outcome
    from workflow.fail_tasks(
        array[fail_task.task_id], array[fail_task.attempt], array[fail_task.error], fail_task.now,
        array[fail_task.retryable]
    ) as f;
$$;
