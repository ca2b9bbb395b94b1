-- complete_task: complete one claimed task (the psql-friendly form of complete_tasks).
--
-- Returns true when the completion was accepted, false when it was ignored (stale attempt,
-- task no longer started). Locks and invariants: those of complete_tasks. Safe to repeat.
create or replace function workflow.complete_task(
    task_id bigint,
    attempt integer,
    output jsonb default 'null',
    now timestamptz default clock_timestamp()
)
returns boolean
language sql
set search_path = ''
as $$
    select c.accepted
    from workflow.complete_tasks(
        array[complete_task.task_id], array[complete_task.attempt], array[complete_task.output], complete_task.now
    ) as c;
$$;
