-- update_schedule: change a schedule; null arguments keep what is there.
--
-- Called by psql users, clients and the CLI (enable, disable). Changing cron or timezone, or
-- enabling a disabled schedule, recomputes the next tick from now: ticks that fell while it was
-- disabled are not caught up. Changing only input, missed, max_catch_up or flow keeps the next
-- tick.
-- Locks: the schedules row FOR UPDATE (waits for a fire_due_schedules holding it, so a tick is
-- fired with the definition it had or with the new one, never a mix).
-- Errors: WF029 unknown schedule, and those of create_schedule's checks (WF002, WF027, WF028,
-- WF009, WF010). On error nothing changes. Returns the next fire time (null when disabled).
-- Safe to repeat.
create or replace function workflow.update_schedule(
    schedule_name text,
    flow_slug text default null,
    cron text default null,
    input jsonb default null,
    timezone text default null,
    missed text default null,
    max_catch_up integer default null,
    enabled boolean default null,
    now timestamptz default clock_timestamp()
)
returns timestamptz
language plpgsql
set search_path = ''
as $$
declare
    v_old workflow.schedules;
    v_next timestamptz;
begin
    select * into v_old from workflow.schedules s where s.schedule_name = update_schedule.schedule_name for update;
    if not found then
        raise exception 'schedule % does not exist', coalesce(update_schedule.schedule_name, 'null')
            using errcode = 'WF029';
    end if;
    v_next := workflow._check_schedule(
        coalesce(update_schedule.flow_slug, v_old.flow_slug), coalesce(update_schedule.cron, v_old.cron),
        coalesce(update_schedule.input, v_old.input), coalesce(update_schedule.timezone, v_old.timezone),
        coalesce(update_schedule.missed, v_old.missed), coalesce(update_schedule.max_catch_up, v_old.max_catch_up),
        update_schedule.now);
    if not (update_schedule.cron is distinct from v_old.cron and update_schedule.cron is not null
            or update_schedule.timezone is distinct from v_old.timezone and update_schedule.timezone is not null
            or update_schedule.enabled and not v_old.enabled
            or v_old.next_fire_at is null) then
        v_next := v_old.next_fire_at;
    end if;
    update workflow.schedules s
    set flow_slug = coalesce(update_schedule.flow_slug, s.flow_slug),
        cron = coalesce(update_schedule.cron, s.cron),
        input = coalesce(update_schedule.input, s.input),
        timezone = coalesce(update_schedule.timezone, s.timezone),
        missed = coalesce(update_schedule.missed, s.missed),
        max_catch_up = coalesce(update_schedule.max_catch_up, s.max_catch_up),
        enabled = coalesce(update_schedule.enabled, s.enabled),
        next_fire_at = v_next,
        updated_at = update_schedule.now
    where s.schedule_name = update_schedule.schedule_name;
    return case when coalesce(update_schedule.enabled, v_old.enabled) then v_next end;
end;
$$;
