-- _check_schedule: validate a schedule's definition and return its first tick after now.
--
-- Called by create_schedule and update_schedule, so both refuse the same things before storing
-- anything. Errors: WF002 unknown flow, WF027 invalid cron or one that never fires, WF028
-- unknown time zone, WF009 input of the wrong JSON type for the flow, WF010 unknown missed
-- policy or max_catch_up below 1. Locks nothing. Stable.
create or replace function workflow._check_schedule(
    flow_slug text,
    cron text,
    input jsonb,
    timezone text,
    missed text,
    max_catch_up integer,
    now timestamptz
)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
    v_root_map boolean;
    v_next timestamptz;
begin
    if not exists (select 1 from workflow.flows f where f.flow_slug = _check_schedule.flow_slug) then
        raise exception 'flow % does not exist', coalesce(_check_schedule.flow_slug, 'null') using errcode = 'WF002';
    end if;
    perform workflow._validate_timezone(_check_schedule.timezone);
    if _check_schedule.missed is null or _check_schedule.missed not in ('skip', 'once', 'each') then
        raise exception 'unknown missed-tick policy %', coalesce(quote_literal(_check_schedule.missed), 'null')
            using errcode = 'WF010', hint = 'Use skip, once or each.';
    end if;
    if _check_schedule.max_catch_up is null or _check_schedule.max_catch_up not between 1 and 1000 then
        raise exception 'max_catch_up must be between 1 and 1000, got %', coalesce(_check_schedule.max_catch_up::text, 'null')
            using errcode = 'WF010';
    end if;
    select coalesce(bool_or(s.step_type = 'map' and s.deps_count = 0), false) into v_root_map
    from workflow.flows f
    join workflow.steps s on s.version_id = f.current_version_id
    where f.flow_slug = _check_schedule.flow_slug;
    if jsonb_typeof(_check_schedule.input) is distinct from (case when v_root_map then 'array' else 'object' end) then
        raise exception 'schedule input must be a JSON %, got %', case when v_root_map then 'array' else 'object' end,
            coalesce(jsonb_typeof(_check_schedule.input), 'null')
            using errcode = 'WF009';
    end if;
    v_next := workflow._cron_next(workflow._parse_cron(_check_schedule.cron), _check_schedule.now, _check_schedule.timezone);
    if v_next is null then
        raise exception 'invalid cron expression %: it never fires', quote_literal(_check_schedule.cron)
            using errcode = 'WF027', hint = 'Check the day of month against the month (30 February does not exist).';
    end if;
    return v_next;
end;
$$;
