-- list_workflow_runs: runs filtered by status and flow, ordered and paged.
--
-- Called by psql users, clients, the CLI and dashboards. status_filter: null (all), 'started'
-- (running or paused), 'scheduled' (waiting for start_at), 'in_progress' (both), 'completed',
-- 'failed' (cancelled included), 'paused', 'cancelled'. order_by: 'inserted_at' (= started_at),
-- 'started_at', 'completed_at', 'failed_at', 'flow_slug', 'status'; direction 'asc' or 'desc'.
-- Only those names reach the ORDER BY, through format('%I'), so nothing the caller writes becomes
-- SQL. Indexes on (status, started_at), (flow_slug, started_at) and (started_at) serve the default
-- ordering on large tables.
-- Locks nothing. Errors: WF010 unknown status, order column or direction, limit_rows outside 1..1000,
-- negative offset_rows. Read-only.
create or replace function workflow.list_workflow_runs(
    status_filter text default null,
    workflow_slug text default null,
    limit_rows integer default 100,
    offset_rows integer default 0,
    order_by text default 'inserted_at',
    order_dir text default 'desc'
)
returns table (
    run_id uuid,
    flow_slug text,
    status text,
    state text,
    remaining_steps integer,
    error_message text,
    retry_of uuid,
    started_at timestamptz,
    completed_at timestamptz,
    failed_at timestamptz,
    paused_at timestamptz,
    cancelled_at timestamptz
)
language plpgsql
stable
set search_path = ''
as $$
declare
    v_where text;
    v_column text;
begin
    -- GUARD: whitelisted filter values, order column and direction
    v_where := case lower(coalesce(list_workflow_runs.status_filter, 'all'))
        when 'all' then 'true'
        when 'started' then 'r.status = ''started'''
        when 'in_progress' then 'r.status in (''started'', ''scheduled'')'
        when 'scheduled' then 'r.status = ''scheduled'''
        when 'completed' then 'r.status = ''completed'''
        when 'failed' then 'r.status = ''failed'''
        when 'paused' then 'r.status = ''started'' and r.paused_at is not null'
        when 'cancelled' then 'r.cancelled_at is not null'
    end;
    if v_where is null then
        raise exception 'unknown run status filter %', quote_literal(list_workflow_runs.status_filter)
            using errcode = 'WF010', hint = 'Use started, scheduled, in_progress, completed, failed, paused or cancelled.';
    end if;
    v_column := case lower(coalesce(list_workflow_runs.order_by, 'inserted_at'))
        when 'inserted_at' then 'started_at'
        when 'started_at' then 'started_at'
        when 'completed_at' then 'completed_at'
        when 'failed_at' then 'failed_at'
        when 'flow_slug' then 'flow_slug'
        when 'status' then 'status'
    end;
    if v_column is null then
        raise exception 'cannot order runs by %', quote_literal(list_workflow_runs.order_by)
            using errcode = 'WF010', hint = 'Order by inserted_at, started_at, completed_at, failed_at, flow_slug or status.';
    end if;
    if lower(coalesce(list_workflow_runs.order_dir, 'desc')) not in ('asc', 'desc') then
        raise exception 'order direction must be asc or desc, got %', quote_literal(list_workflow_runs.order_dir)
            using errcode = 'WF010';
    end if;
    if list_workflow_runs.limit_rows is null or list_workflow_runs.limit_rows not between 1 and 1000 then
        raise exception 'limit must be between 1 and 1000, got %', list_workflow_runs.limit_rows using errcode = 'WF010';
    end if;
    if list_workflow_runs.offset_rows is null or list_workflow_runs.offset_rows < 0 then
        raise exception 'offset must be 0 or more, got %', list_workflow_runs.offset_rows using errcode = 'WF010';
    end if;

    return query execute format($sql$
        select r.run_id, r.flow_slug, r.status,
            workflow.run_state(r.status, r.paused_at, r.cancelled_at),
            r.remaining_steps, r.error_message, r.retry_of,
            r.started_at, r.completed_at, r.failed_at, r.paused_at, r.cancelled_at
        from workflow.runs r
        where %s and ($1::text is null or r.flow_slug = $1)
        order by r.%I %s%s, r.run_id
        limit $2 offset $3
    $sql$, v_where, v_column, lower(coalesce(list_workflow_runs.order_dir, 'desc')),
        -- Only the nullable columns get "nulls last": for started_at (not null) it changes no
        -- result but would stop the (started_at desc) indexes from serving a newest-first page.
        case when v_column in ('completed_at', 'failed_at') then ' nulls last' else '' end)
    using list_workflow_runs.workflow_slug, list_workflow_runs.limit_rows, list_workflow_runs.offset_rows;
end;
$$;
