-- list_limits: the concurrency and rate limits and their current use.
--
-- Called by the CLI (`limits list`), the dashboard's queues page and psql users. One row per
-- limit and key in use. in_use: for a concurrency limit, the tasks started and not finished that
-- hold a slot of it (a limit lowered below its use shows in_use > max_count until tasks finish);
-- for a rate limit, the starts inside the window ending at now. A limit not in use shows one row
-- with key null and in_use 0. Ordered by kind, scope, name, key.
-- Locks nothing. Errors: none. Read-only.
create or replace function workflow.list_limits(
    now timestamptz default clock_timestamp()
)
returns table (
    kind text,
    scope text,
    name text,
    key_path text,
    key text,
    max_count integer,
    per_seconds numeric,
    in_use bigint
)
language sql
stable
set search_path = ''
as $$
    select l.kind, l.scope, l.name, array_to_string(l.key_path, '.'), u.key, l.max_count, l.per_seconds,
        coalesce(u.in_use, 0)
    from workflow.limits l
    left join lateral (
        select s.key, count(*) as in_use
        from workflow.concurrency_slots s
        join workflow.tasks t on t.task_id = s.task_id
        where l.kind = 'concurrency' and s.limit_id = l.limit_id and t.status = 'started'
        group by s.key
        union all
        select w.key, (
            select count(*) from unnest(w.starts) as x (at)
            where x.at > list_limits.now - make_interval(secs => l.per_seconds::double precision)
        )
        from workflow.rate_windows w
        where l.kind = 'rate' and w.limit_id = l.limit_id
    ) as u on true
    order by l.kind, l.scope, l.name, u.key;
$$;
