-- list_limits: the concurrency limits and their current use.
--
-- Called by the CLI (`limits list`), the dashboard's queues page and psql users. One row per
-- limit and key in use: in_use counts the tasks started and not finished that hold a slot of it
-- (so a limit lowered below its use shows in_use > max_running until tasks finish); a limit with
-- no task running shows one row with key null and in_use 0. Ordered by scope, name, key.
-- Locks nothing. Errors: none. Read-only.
create or replace function workflow.list_limits()
returns table (
    scope text,
    name text,
    key_path text,
    key text,
    max_running integer,
    in_use bigint
)
language sql
stable
set search_path = ''
as $$
    select l.scope, l.name, array_to_string(l.key_path, '.'), u.key, l.max_running, coalesce(u.in_use, 0)
    from workflow.concurrency_limits l
    left join lateral (
        select s.key, count(*) as in_use
        from workflow.concurrency_slots s
        join workflow.tasks t on t.task_id = s.task_id
        where s.limit_id = l.limit_id and t.status = 'started'
        group by s.key
    ) as u on true
    order by l.scope, l.name, u.key;
$$;
