-- list_schedules: every schedule with its next tick and its last run.
--
-- Called by psql users, clients, the CLI (schedules list) and the dashboard. next_fire_at is
-- the next tick not yet fired (null when disabled: a disabled schedule fires nothing, and
-- enabling it recomputes the tick from then); last_run_id / last_run_state are the run of the
-- latest fired tick (state as run_state says; null when that run has been pruned).
-- Locks nothing. Errors: none. Read-only.
create or replace function workflow.list_schedules()
returns table (
    schedule_name text,
    flow_slug text,
    cron text,
    timezone text,
    input jsonb,
    enabled boolean,
    missed text,
    max_catch_up integer,
    next_fire_at timestamptz,
    last_fired_at timestamptz,
    last_run_id uuid,
    last_run_state text,
    last_error text
)
language sql
stable
set search_path = ''
as $$
    select s.schedule_name, s.flow_slug, s.cron, s.timezone, s.input, s.enabled, s.missed, s.max_catch_up,
        case when s.enabled then s.next_fire_at end, s.last_fired_at, s.last_run_id,
        workflow.run_state(r.status, r.paused_at, r.cancelled_at), s.last_error
    from workflow.schedules s
    left join workflow.runs r on r.run_id = s.last_run_id
    order by s.schedule_name;
$$;
