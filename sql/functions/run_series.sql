-- run_series: runs started, completed, failed and cancelled over a window, in equal time buckets.
--
-- Called by the dashboard's charts ("runs by status") and psql users. The window
-- (now - window_length, now] is cut into bucket_count buckets, (start + k * width,
-- start + (k + 1) * width]; one row per bucket, zeros included. started counts runs by
-- started_at; completed by completed_at; failed (not cancelled) and cancelled by failed_at.
-- Reads the runs started since now - window_length - horizon (a run that started before that
-- and ended inside the window is not counted), per stored status through the runs'
-- (status, started_at) index. Scheduled runs that have not started are not counted.
-- Locks nothing. Errors: WF010 a window_length that is not positive, a bucket_count outside
-- 1..1000, a negative horizon. Read-only.
create or replace function workflow.run_series(
    window_length interval default interval '1 hour',
    bucket_count integer default 60,
    horizon interval default interval '1 day',
    now timestamptz default clock_timestamp()
)
returns table (
    bucket_start timestamptz,
    started bigint,
    completed bigint,
    failed bigint,
    cancelled bigint
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
    if run_series.window_length is null or run_series.window_length <= interval '0' then
        raise exception 'window_length must be a positive interval, got %', coalesce(run_series.window_length::text, 'null')
            using errcode = 'WF010', hint = 'For example interval ''1 hour''.';
    end if;
    if run_series.bucket_count is null or run_series.bucket_count not between 1 and 1000 then
        raise exception 'bucket_count must be between 1 and 1000, got %', coalesce(run_series.bucket_count::text, 'null')
            using errcode = 'WF010', hint = 'A chart needs about one bucket per 10 pixels: 60 is the default.';
    end if;
    if run_series.horizon is null or run_series.horizon < interval '0' then
        raise exception 'horizon must be an interval of zero or more, got %', coalesce(run_series.horizon::text, 'null')
            using errcode = 'WF010', hint = 'The default, interval ''1 day'', suits most windows.';
    end if;
    v_start := run_series.now - run_series.window_length;
    v_width := run_series.window_length / run_series.bucket_count;

    return query
    with recent as materialized (
        select r.started_at, r.completed_at, r.failed_at, r.cancelled_at is not null as cancelled
        from workflow.runs as r
        where r.status = any (array['started', 'completed', 'failed'])
          and r.started_at > v_start - run_series.horizon and r.started_at <= run_series.now
    ),
    events as (
        select x.started_at as at, 'started' as kind from recent as x
        union all
        select x.completed_at, 'completed' from recent as x where x.completed_at is not null
        union all
        select x.failed_at, case when x.cancelled then 'cancelled' else 'failed' end
        from recent as x where x.failed_at is not null
    ),
    placed as (
        select least(greatest(ceil(extract(epoch from e.at - v_start) / extract(epoch from v_width))::integer - 1, 0),
            run_series.bucket_count - 1) as i, e.kind
        from events as e
        where e.at > v_start and e.at <= run_series.now
    )
    select v_start + v_width * b.i,
        count(p.kind) filter (where p.kind = 'started'),
        count(p.kind) filter (where p.kind = 'completed'),
        count(p.kind) filter (where p.kind = 'failed'),
        count(p.kind) filter (where p.kind = 'cancelled')
    from generate_series(0, run_series.bucket_count - 1) as b (i)
    left join placed as p on p.i = b.i
    group by b.i
    order by b.i;
end;
$$;
