-- metrics_series: the tasks of each queue over a window, in equal time buckets, for charts.
--
-- Called by the dashboard's charts and psql users. The window (now - window_length, now] is cut
-- into bucket_count buckets; one row per (bucket, queue) for every queue with tasks in the
-- window, buckets without activity included (zeros), so a chart gets a full time axis. Per
-- bucket, from the tasks' timestamps (the tasks created since now - window_length - horizon,
-- through the BRIN index on tasks.queued_at, as workflow.metrics):
--   claimed    tasks whose latest claim (started_at) falls in the bucket
--   completed  tasks completed in the bucket; failed: tasks failed for good in the bucket
--   depth      tasks ready and not yet claimed at the bucket's end: ready (queued_at plus the
--              step's start delay) at or before it, and not claimed, completed or failed by it.
--              A retried task counts from its first readiness until its latest claim (its
--              earlier attempts' claim times are not stored), so depth is an upper bound
--              while retries are pending; tasks created before the horizon are not counted.
--   claim_latency_p50_seconds / _p95_  ready to first claim, over the first attempts claimed in
--              the bucket (null when none)
-- Locks nothing. Errors: WF010 a window_length that is not positive, a bucket_count outside
-- 1..1000, a negative horizon. Read-only.
create or replace function workflow.metrics_series(
    window_length interval default interval '1 hour',
    bucket_count integer default 60,
    horizon interval default interval '1 day',
    now timestamptz default clock_timestamp()
)
returns table (
    bucket_start timestamptz,
    queue_name text,
    claimed bigint,
    completed bigint,
    failed bigint,
    depth bigint,
    claim_latency_p50_seconds double precision,
    claim_latency_p95_seconds double precision
)
language plpgsql
stable
set search_path = ''
as $$
declare
    v_start timestamptz;
    v_width interval;
begin
    -- GUARD
    if metrics_series.window_length is null or metrics_series.window_length <= interval '0' then
        raise exception 'window_length must be a positive interval, got %', coalesce(metrics_series.window_length::text, 'null')
            using errcode = 'WF010', hint = 'For example interval ''1 hour''.';
    end if;
    if metrics_series.bucket_count is null or metrics_series.bucket_count not between 1 and 1000 then
        raise exception 'bucket_count must be between 1 and 1000, got %', coalesce(metrics_series.bucket_count::text, 'null')
            using errcode = 'WF010', hint = 'A chart needs about one bucket per 10 pixels: 60 is the default.';
    end if;
    if metrics_series.horizon is null or metrics_series.horizon < interval '0' then
        raise exception 'horizon must be an interval of zero or more, got %', coalesce(metrics_series.horizon::text, 'null')
            using errcode = 'WF010', hint = 'The default, interval ''1 day'', suits most windows.';
    end if;
    v_start := metrics_series.now - metrics_series.window_length;
    v_width := metrics_series.window_length / metrics_series.bucket_count;

    -- PHASE 1: one pass over the window's tasks; each timestamp becomes a bucket number (-1:
    -- before the window, which only the depth's running sum uses). Depth is a running sum of +1
    -- at readiness and -1 at the first of claim / end, so the cost is one pass, not buckets x
    -- tasks.
    return query
    with recent as materialized (
        select t.queue_name,
            t.queued_at + make_interval(secs => coalesce(s.start_delay_seconds, 0)) as ready_at,
            t.attempts_count, t.started_at, t.completed_at, t.failed_at,
            least(t.started_at, t.completed_at, t.failed_at) as left_at
        from workflow.tasks as t
        join workflow.runs as r on r.run_id = t.run_id
        left join workflow.steps as s on s.version_id = r.version_id and s.step_slug = t.step_slug
        where t.queued_at > v_start - metrics_series.horizon and t.queued_at <= metrics_series.now
    ),
    buckets as (
        select b.i, v_start + v_width * b.i as bucket_start
        from generate_series(0, metrics_series.bucket_count - 1) as b (i)
    ),
    queues as (
        select distinct x.queue_name from recent as x
    ),
    placed as (
        select x.*,
            case when x.started_at > v_start and x.started_at <= metrics_series.now
                then least(greatest(ceil(extract(epoch from x.started_at - v_start) / extract(epoch from v_width))::integer - 1, 0),
                    metrics_series.bucket_count - 1) end as started_bucket,
            case when x.completed_at > v_start and x.completed_at <= metrics_series.now
                then least(greatest(ceil(extract(epoch from x.completed_at - v_start) / extract(epoch from v_width))::integer - 1, 0),
                    metrics_series.bucket_count - 1) end as completed_bucket,
            case when x.failed_at > v_start and x.failed_at <= metrics_series.now
                then least(greatest(ceil(extract(epoch from x.failed_at - v_start) / extract(epoch from v_width))::integer - 1, 0),
                    metrics_series.bucket_count - 1) end as failed_bucket
        from recent as x
    ),
    -- A timestamp belongs to the bucket whose end is at or after it: bucket k covers
    -- (start + k * width, start + (k + 1) * width]; -1 is "by the window's start".
    depth_events as (
        select x.queue_name,
            greatest(ceil(extract(epoch from x.ready_at - v_start) / extract(epoch from v_width))::integer - 1, -1) as k,
            1 as d
        from recent as x
        where x.ready_at <= metrics_series.now
        union all
        select x.queue_name,
            greatest(ceil(extract(epoch from x.left_at - v_start) / extract(epoch from v_width))::integer - 1, -1),
            -1
        from recent as x
        where x.ready_at <= metrics_series.now and x.left_at <= metrics_series.now
    ),
    deltas as (
        select e.queue_name, e.k, sum(e.d) as d from depth_events as e group by e.queue_name, e.k
    ),
    counts as (
        select p.queue_name, p.started_bucket as i, count(*) as claimed,
            percentile_cont(0.5) within group (order by extract(epoch from greatest(p.started_at - p.ready_at, interval '0')))
                filter (where p.attempts_count = 1) as lat50,
            percentile_cont(0.95) within group (order by extract(epoch from greatest(p.started_at - p.ready_at, interval '0')))
                filter (where p.attempts_count = 1) as lat95
        from placed as p where p.started_bucket is not null
        group by p.queue_name, p.started_bucket
    ),
    done as (
        select p.queue_name, p.completed_bucket as i, count(*) as n
        from placed as p where p.completed_bucket is not null group by p.queue_name, p.completed_bucket
    ),
    lost as (
        select p.queue_name, p.failed_bucket as i, count(*) as n
        from placed as p where p.failed_bucket is not null group by p.queue_name, p.failed_bucket
    )
    select b.bucket_start, q.queue_name,
        coalesce(c.claimed, 0), coalesce(dn.n, 0), coalesce(l.n, 0),
        greatest(coalesce((select sum(dl.d) from deltas as dl where dl.queue_name = q.queue_name and dl.k <= b.i), 0), 0)::bigint,
        c.lat50, c.lat95
    from buckets as b
    cross join queues as q
    left join counts as c on c.queue_name = q.queue_name and c.i = b.i
    left join done as dn on dn.queue_name = q.queue_name and dn.i = b.i
    left join lost as l on l.queue_name = q.queue_name and l.i = b.i
    order by q.queue_name, b.bucket_start;
end;
$$;
