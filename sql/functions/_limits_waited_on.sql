-- _limits_waited_on: the limits a step of a run is waiting on, for get_run_status.
--
-- Called by get_run_status for each step. Returns a JSON array, empty unless the step has queued
-- tasks in a live run: one {"kind", "scope", "name", "key", "in_use", "max", "per_seconds",
-- "ahead"} per limit covering the step (its queue, its flow, the step, the run's key) that is
-- full now: for concurrency, in_use started tasks hold slots of (limit, key); for rate, in_use
-- starts fall inside the window ending at now. ahead counts the tasks queued before this run's
-- first queued task of the step under the same limit and key, among the same step's tasks (the
-- cheap part of the queue; tasks of other steps under the limit are not counted).
-- Locks nothing. Errors: none. Read-only.
create or replace function workflow._limits_waited_on(
    run_id uuid,
    step_slug text,
    now timestamptz
)
returns jsonb
language sql
stable
set search_path = ''
as $$
    select coalesce(jsonb_agg(jsonb_build_object(
        'kind', l.kind, 'scope', l.scope, 'name', l.name, 'key', k.key, 'in_use', u.n, 'max', l.max_count,
        'per_seconds', l.per_seconds,
        'ahead', (
            select count(*) from workflow.tasks t2
            join workflow.runs r2 on r2.run_id = t2.run_id
            where t2.step_slug = _limits_waited_on.step_slug and r2.flow_slug = r.flow_slug
              and t2.status = 'queued' and t2.task_id < q.first_task
              and (l.scope <> 'key' or coalesce(r2.concurrency_key, r2.input #>> l.key_path, '') = k.key)
        )
    ) order by l.limit_id), '[]'::jsonb)
    from workflow.runs r
    join workflow.steps s on s.version_id = r.version_id and s.step_slug = _limits_waited_on.step_slug
    cross join lateral (
        select min(t.task_id) as first_task from workflow.tasks t
        where t.run_id = r.run_id and t.step_slug = s.step_slug and t.status = 'queued'
    ) as q
    join workflow.limits l
        on (l.scope = 'queue' and l.name = s.queue_name)
        or (l.scope in ('flow', 'key') and l.name = r.flow_slug)
        or (l.scope = 'step' and l.name = r.flow_slug || '.' || s.step_slug)
    cross join lateral (
        select case when l.scope = 'key' then coalesce(r.concurrency_key, r.input #>> l.key_path, '') else '' end as key
    ) as k
    cross join lateral (
        select case when l.kind = 'concurrency' then (
            select count(*) from workflow.concurrency_slots cs
            join workflow.tasks t on t.task_id = cs.task_id
            where cs.limit_id = l.limit_id and cs.key = k.key and t.status = 'started'
        ) else coalesce((
            select count(*) from workflow.rate_windows w, unnest(w.starts) as x (at)
            where w.limit_id = l.limit_id and w.key = k.key
              and x.at > _limits_waited_on.now - make_interval(secs => l.per_seconds::double precision)
        ), 0) end as n
    ) as u
    where r.run_id = _limits_waited_on.run_id and (r.status = 'started') is true
      and q.first_task is not null and u.n >= l.max_count;
$$;
