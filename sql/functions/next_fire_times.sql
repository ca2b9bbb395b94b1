-- next_fire_times: the next n ticks of a schedule after now, for users to check an expression.
--
-- Called by psql users, clients, the CLI (schedules show) and the dashboard. Computed from the
-- schedule's cron and time zone, whether or not it is enabled (a disabled schedule fires none
-- of them). Locks nothing. Errors: WF029 unknown schedule, WF010 n outside 1..1000. Read-only.
create or replace function workflow.next_fire_times(
    schedule_name text,
    n integer default 5,
    now timestamptz default clock_timestamp()
)
returns setof timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
    v_s workflow.schedules;
    v_spec jsonb;
    v_tick timestamptz;
begin
    select * into v_s from workflow.schedules s where s.schedule_name = next_fire_times.schedule_name;
    if not found then
        raise exception 'schedule % does not exist', coalesce(next_fire_times.schedule_name, 'null')
            using errcode = 'WF029';
    end if;
    if next_fire_times.n is null or next_fire_times.n not between 1 and 1000 then
        raise exception 'n must be between 1 and 1000, got %', coalesce(next_fire_times.n::text, 'null')
            using errcode = 'WF010';
    end if;
    v_spec := workflow._parse_cron(v_s.cron);
    v_tick := next_fire_times.now;
    for v_i in 1..next_fire_times.n loop
        v_tick := workflow._cron_next(v_spec, v_tick, v_s.timezone);
        exit when v_tick is null;
        return next v_tick;
    end loop;
end;
$$;
