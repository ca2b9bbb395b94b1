-- metrics: what the engine is doing now and did over a recent window, per queue and flow.
--
-- Called by the dashboard's /metrics endpoint (Prometheus), the dashboard's charts, the CLI's
-- `metrics` command and psql users. One row per (queue, flow) that has live work now or tasks in
-- the window. Now (the live tasks, read from each workflow queue's pgmq table, so the cost follows
-- the live work, not the history):
--   ready              queued tasks whose message is visible: claimable now
--   waiting_on_limits  queued tasks (visible or deferred) under a concurrency or rate limit that is
--                      full now (the rule of _limits_waited_on: queue, flow, step or key scope)
--   delayed            queued tasks whose message is invisible for another reason: retry backoff,
--                      a start delay, a limit deferral whose limit has room again
--   paused             queued tasks of paused runs (their messages are parked)
--   running            tasks claimed and not finished (an expired lease still counts here until
--                      the next claim takes the task again)
--   oldest_ready_seconds  how long the longest-waiting ready task has been claimable (since its
--                      message became visible or the task was queued, the later); null if none
-- Over the window (now - window_length, now] (the tasks created since now - window_length -
-- horizon, through the BRIN index on tasks.queued_at: a task created earlier than that and
-- finished inside the window is not counted; horizon bounds the read):
--   completed / failed  tasks completed, tasks failed for good (retried attempts are not failures)
--   claim_latency_p50_seconds / _p95_  from a task becoming ready to its first claim (queued_at
--                      plus the step's start delay to started_at), over first attempts started in
--                      the window; a retried task's later claims are not measured (the time its
--                      backoff ended is not stored)
--   duration_p50_seconds / _p95_  how long the completing attempt ran (started_at to completed_at)
-- Locks nothing. Errors: WF010 a window_length or horizon that is not positive. Read-only; safe to
-- call as often as a scraper likes (each call reads the live messages and the window's tasks).
create or replace function workflow.metrics(
    window_length interval default interval '5 minutes',
    horizon interval default interval '1 day',
    now timestamptz default clock_timestamp()
)
returns table (
    queue_name text,
    flow_slug text,
    ready bigint,
    waiting_on_limits bigint,
    delayed bigint,
    paused bigint,
    running bigint,
    completed bigint,
    failed bigint,
    oldest_ready_seconds double precision,
    claim_latency_p50_seconds double precision,
    claim_latency_p95_seconds double precision,
    duration_p50_seconds double precision,
    duration_p95_seconds double precision
)
language plpgsql
stable
set search_path = ''
as $$
declare
    v_live text;
begin
    -- GUARD
    if metrics.window_length is null or metrics.window_length <= interval '0' then
        raise exception 'window_length must be a positive interval, got %', coalesce(metrics.window_length::text, 'null')
            using errcode = 'WF010', hint = 'For example interval ''5 minutes''.';
    end if;
    if metrics.horizon is null or metrics.horizon < interval '0' then
        raise exception 'horizon must be an interval of zero or more, got %', coalesce(metrics.horizon::text, 'null')
            using errcode = 'WF010', hint = 'The default, interval ''1 day'', suits most windows.';
    end if;

    -- PHASE 1: the live tasks of every workflow queue (channel queues carry no tasks), as one
    -- union over the queues' own tables: a live task always has its message there.
    select string_agg(format($sql$
        select t.queue_name, r.flow_slug, t.status, t.step_slug, q.vt, greatest(q.vt, t.queued_at) as visible_at,
            r.paused_at is not null as paused,
            r.concurrency_key, r.input
        from pgmq.%I as q
        join workflow.tasks as t on t.task_id = (q.message ->> 'task_id')::bigint
        join workflow.runs as r on r.run_id = t.run_id
        where t.status in ('queued', 'started') and r.status = 'started'
    $sql$, 'q_' || m.queue_name), ' union all ' order by m.queue_name)
    into v_live
    from pgmq.meta as m
    where m.queue_name not in (select c.queue_name from workflow.channels as c);
    if v_live is null then
        v_live := 'select null::text as queue_name, null::text as flow_slug, null::text as status,'
            || ' null::text as step_slug, null::timestamptz as vt, null::timestamptz as visible_at, false as paused, null::text as concurrency_key,'
            || ' null::jsonb as input where false';
    end if;

    -- PHASE 2: classify the live tasks, aggregate the window, join the two
    return query execute format($sql$
        with live as materialized (%s),
        -- the use of each limit and key now: live slots (concurrency), starts in the window (rate)
        used as materialized (
            select cs.limit_id, cs.key, count(*) as n
            from workflow.concurrency_slots as cs
            join workflow.tasks as t on t.task_id = cs.task_id
            where t.status = 'started'
            group by cs.limit_id, cs.key
            union all
            select w.limit_id, w.key, count(*)
            from workflow.rate_windows as w
            join workflow.limits as l on l.limit_id = w.limit_id
            cross join lateral unnest(w.starts) as x (at)
            where x.at > $1 - make_interval(secs => l.per_seconds::double precision)
            group by w.limit_id, w.key
        ),
        classified as (
            select lv.queue_name, lv.flow_slug, lv.status, lv.vt, lv.visible_at, lv.paused,
                lv.status = 'queued' and not lv.paused and exists (
                    select 1
                    from workflow.limits as l
                    cross join lateral (
                        select case when l.scope = 'key' then coalesce(lv.concurrency_key, lv.input #>> l.key_path, '') else '' end as key
                    ) as k
                    join used as u on u.limit_id = l.limit_id and u.key = k.key
                    where ((l.scope = 'queue' and l.name = lv.queue_name)
                        or (l.scope in ('flow', 'key') and l.name = lv.flow_slug)
                        or (l.scope = 'step' and l.name = lv.flow_slug || '.' || lv.step_slug))
                      and u.n >= l.max_count
                ) as limited
            from live as lv
        ),
        now_counts as (
            select c.queue_name, c.flow_slug,
                count(*) filter (where c.status = 'queued' and not c.paused and not c.limited and c.vt <= $1) as ready,
                count(*) filter (where c.limited) as waiting_on_limits,
                count(*) filter (where c.status = 'queued' and not c.paused and not c.limited and c.vt > $1) as delayed,
                count(*) filter (where c.status = 'queued' and c.paused) as paused,
                count(*) filter (where c.status = 'started') as running,
                extract(epoch from $1 - min(c.visible_at) filter (
                    where c.status = 'queued' and not c.paused and not c.limited and c.vt <= $1
                ))::double precision as oldest_ready_seconds
            from classified as c
            group by c.queue_name, c.flow_slug
        ),
        recent as materialized (
            select t.queue_name, r.flow_slug, t.attempts_count, t.completed_at, t.failed_at, t.started_at,
                t.queued_at + make_interval(secs => coalesce(s.start_delay_seconds, 0)) as ready_at
            from workflow.tasks as t
            join workflow.runs as r on r.run_id = t.run_id
            left join workflow.steps as s on s.version_id = r.version_id and s.step_slug = t.step_slug
            where t.queued_at > $1 - $2 - $3 and t.queued_at <= $1
        ),
        window_counts as (
            select w.queue_name, w.flow_slug,
                count(*) filter (where w.completed_at > $1 - $2 and w.completed_at <= $1) as completed,
                count(*) filter (where w.failed_at > $1 - $2 and w.failed_at <= $1) as failed,
                percentile_cont(0.5) within group (order by extract(epoch from greatest(w.started_at - w.ready_at, interval '0')))
                    filter (where w.attempts_count = 1 and w.started_at > $1 - $2 and w.started_at <= $1) as lat50,
                percentile_cont(0.95) within group (order by extract(epoch from greatest(w.started_at - w.ready_at, interval '0')))
                    filter (where w.attempts_count = 1 and w.started_at > $1 - $2 and w.started_at <= $1) as lat95,
                percentile_cont(0.5) within group (order by extract(epoch from w.completed_at - w.started_at))
                    filter (where w.completed_at > $1 - $2 and w.completed_at <= $1) as dur50,
                percentile_cont(0.95) within group (order by extract(epoch from w.completed_at - w.started_at))
                    filter (where w.completed_at > $1 - $2 and w.completed_at <= $1) as dur95
            from recent as w
            group by w.queue_name, w.flow_slug
            having count(*) filter (where (w.completed_at > $1 - $2 and w.completed_at <= $1)
                or (w.failed_at > $1 - $2 and w.failed_at <= $1)
                or (w.started_at > $1 - $2 and w.started_at <= $1)) > 0
        )
        select coalesce(n.queue_name, w.queue_name), coalesce(n.flow_slug, w.flow_slug),
            coalesce(n.ready, 0), coalesce(n.waiting_on_limits, 0), coalesce(n.delayed, 0),
            coalesce(n.paused, 0), coalesce(n.running, 0),
            coalesce(w.completed, 0), coalesce(w.failed, 0), n.oldest_ready_seconds,
            w.lat50, w.lat95, w.dur50, w.dur95
        from now_counts as n
        full join window_counts as w on w.queue_name = n.queue_name and w.flow_slug = n.flow_slug
        order by 1, 2
    $sql$, v_live)
    using metrics.now, metrics.window_length, metrics.horizon;
end;
$$;
