-- create_schedule: start runs of a flow on a cron schedule, in a time zone.
--
-- Called by psql users, clients (Client.create_schedule, and the schedules a workflow class
-- declares, registered with its flow) and the CLI. cron: 5 fields or a shorthand (see
-- _parse_cron); timezone: an IANA name, DST as _cron_next says (a repeated local time fires at
-- its first occurrence; a skipped one an hour later on the clock). input: the input of every
-- run it starts. missed: what ticks that came due while nobody called the engine do: 'skip'
-- (a tick fires only within a minute of its time), 'once' (one run for the latest), 'each'
-- (every one, the latest max_catch_up). Ticks are fired by fire_due_schedules, which the
-- engine's own sweep runs (claim_tasks, start_flows, get_run_status): no leader, no pg_cron.
-- The first tick is the first after now.
-- Idempotent like register_flow: creating a schedule that exists with the same definition
-- changes nothing; with another definition it is refused (WF030: use update_schedule).
-- Locks: inserts the schedules row (a concurrent create of the same name waits on the key).
-- Errors: WF001 malformed name, WF002 unknown flow, WF027 invalid cron (which field and why, or
-- an expression that never fires), WF028 unknown time zone, WF009 input of the wrong JSON type,
-- WF010 unknown missed policy or max_catch_up below 1, WF030 the name is taken by another
-- definition. On error nothing is stored. Returns the next fire time.
create or replace function workflow.create_schedule(
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
declare
    v_next timestamptz;
    v_old workflow.schedules;
begin
    -- GUARD: name, flow, cron, zone, input, policy
    if create_schedule.schedule_name is null or create_schedule.schedule_name !~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$' then
        raise exception 'invalid schedule name %', coalesce(quote_literal(create_schedule.schedule_name), 'null')
            using errcode = 'WF001', hint = 'Use a letter or _ then up to 127 letters, digits and _ . : -.';
    end if;
    v_next := workflow._check_schedule(create_schedule.flow_slug, create_schedule.cron, create_schedule.input,
        create_schedule.timezone, create_schedule.missed, create_schedule.max_catch_up, create_schedule.now);

    -- PHASE 1: the row, or the same row again
    insert into workflow.schedules as s (schedule_name, flow_slug, cron, timezone, input, enabled, missed, max_catch_up,
        next_fire_at, created_at, updated_at)
    values (create_schedule.schedule_name, create_schedule.flow_slug, create_schedule.cron, create_schedule.timezone,
        create_schedule.input, coalesce(create_schedule.enabled, true), create_schedule.missed, create_schedule.max_catch_up,
        v_next, create_schedule.now, create_schedule.now)
    on conflict on constraint schedules_pkey do nothing;
    if found then
        return v_next;
    end if;
    select * into v_old from workflow.schedules s where s.schedule_name = create_schedule.schedule_name;
    if (v_old.flow_slug, v_old.cron, v_old.timezone, v_old.input, v_old.missed, v_old.max_catch_up)
        is distinct from (create_schedule.flow_slug, create_schedule.cron, create_schedule.timezone,
            create_schedule.input, create_schedule.missed, create_schedule.max_catch_up) then
        raise exception 'schedule % exists with another definition', create_schedule.schedule_name
            using errcode = 'WF030', hint = 'Change it with workflow.update_schedule, or delete it first.';
    end if;
    return v_old.next_fire_at;
end;
$$;
