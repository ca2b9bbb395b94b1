-- declare_schedule: create a schedule, or bring an existing one of that name up to the given
-- definition, keeping its enabled flag.
--
-- Called by clients when they register a workflow class that declares schedules (the code is
-- the source of truth for a schedule's definition, an operator's disable survives a redeploy),
-- and by psql users who keep schedules in a deployment script. A new name is create_schedule
-- (enabled as given); a known one is update_schedule with every field but enabled.
-- Locks: those of create_schedule, or the schedules row FOR UPDATE (update_schedule).
-- Errors: those of create_schedule and update_schedule (WF002, WF027, WF028, WF009, WF010).
-- Returns the next fire time (null when the schedule is disabled). Safe to repeat.
create or replace function workflow.declare_schedule(
    schedule_name text,
    flow_slug text,
    cron text,
    input jsonb default '{}',
    timezone text default 'UTC',
    missed text default 'skip',
    max_catch_up integer default 10,
    enabled boolean default true,
    now timestamptz default clock_timestamp()
)
returns timestamptz
language plpgsql
set search_path = ''
as $$
begin
    if exists (select 1 from workflow.schedules as s where s.schedule_name = declare_schedule.schedule_name) then
        return workflow.update_schedule(
            declare_schedule.schedule_name, declare_schedule.flow_slug, declare_schedule.cron,
            declare_schedule.input, declare_schedule.timezone, declare_schedule.missed,
            declare_schedule.max_catch_up, null, declare_schedule.now
        );
    end if;
    return workflow.create_schedule(
        declare_schedule.schedule_name, declare_schedule.flow_slug, declare_schedule.cron,
        declare_schedule.input, declare_schedule.timezone, declare_schedule.missed,
        declare_schedule.max_catch_up, declare_schedule.enabled, declare_schedule.now
    );
end;
$$;
