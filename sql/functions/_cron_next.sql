-- _cron_next: the first tick of a parsed cron expression strictly after a given instant, in a
-- time zone.
--
-- Called by create_schedule, update_schedule, fire_due_schedules and next_fire_times. spec is
-- what _parse_cron returns; the expression is evaluated in local time of timezone (an IANA name
-- PostgreSQL knows; the caller has validated it).
-- Daylight saving time, how each local time maps to one instant:
--   * a local time that occurs twice (clocks go back: 02:30 in Europe/Berlin on the last Sunday
--     of October) fires once, at its first occurrence (still summer time); the repeated hour
--     fires nothing again, so "*/15 * * * *" has one gap of an hour that night and no repeat;
--   * a local time that does not exist (clocks go forward: 02:30 on the last Sunday of March)
--     fires at the instant it would have had before the change, which the clock shows as one
--     hour later (03:30); a tick that then falls on the same instant as another fires once.
-- How: walks local days from the day of after (at most 8 years ahead, enough for any
-- expression that can match: 29 February on a given weekday recurs within 28 years only with
-- day-of-week restricted, and day-of-month/day-of-week combine with OR), and within a matching
-- day the hours and minutes in order; the first candidate after after is the answer, except that
-- a candidate in a skipped hour (mapped later than its local time says) lets the walk go on
-- until its own local time, since an existing time right after the gap can come first.
-- Returns null when the expression never matches (30 February). Locks nothing. Stable.
create or replace function workflow._cron_next(spec jsonb, after timestamptz, timezone text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
    v_minutes integer[] := array(select jsonb_array_elements_text(_cron_next.spec -> 'minute')::integer);
    v_hours integer[] := array(select jsonb_array_elements_text(_cron_next.spec -> 'hour')::integer);
    v_doms integer[] := array(select jsonb_array_elements_text(_cron_next.spec -> 'dom')::integer);
    v_months integer[] := array(select jsonb_array_elements_text(_cron_next.spec -> 'month')::integer);
    v_dows integer[] := array(select jsonb_array_elements_text(_cron_next.spec -> 'dow')::integer);
    v_dom_any boolean := (_cron_next.spec ->> 'dom_any')::boolean;
    v_dow_any boolean := (_cron_next.spec ->> 'dow_any')::boolean;
    v_local timestamp := _cron_next.after at time zone _cron_next.timezone;
    v_day date := v_local::date;
    v_dom_ok boolean;
    v_dow_ok boolean;
    v_h integer;
    v_m integer;
    v_cand timestamp;
    v_at timestamptz;
    v_best timestamptz;
    v_until timestamp;
begin
    for v_n in 0..(366 * 8) loop
        if v_until is not null and v_day > v_until::date then
            exit;
        end if;
        if extract(month from v_day)::integer = any(v_months) then
            v_dom_ok := extract(day from v_day)::integer = any(v_doms);
            v_dow_ok := extract(dow from v_day)::integer = any(v_dows);
            if (case
                    when v_dom_any and v_dow_any then true
                    when v_dom_any then v_dow_ok
                    when v_dow_any then v_dom_ok
                    else v_dom_ok or v_dow_ok
                end) then
                foreach v_h in array v_hours loop
                    -- hours wholly before after's local hour cannot hold the answer (an hour of
                    -- slack for the repeated hour, whose times map to the earlier instant)
                    continue when v_day + make_time(v_h, 59, 0) < v_local - interval '1 hour';
                    foreach v_m in array v_minutes loop
                        v_cand := v_day + make_time(v_h, v_m, 0);
                        exit when v_until is not null and v_cand >= v_until;
                        v_at := v_cand at time zone _cron_next.timezone;
                        -- the first occurrence of a repeated local time
                        if ((v_at - interval '1 hour') at time zone _cron_next.timezone) = v_cand then
                            v_at := v_at - interval '1 hour';
                        end if;
                        if v_at > _cron_next.after and (v_best is null or v_at < v_best) then
                            v_best := v_at;
                            if (v_at at time zone _cron_next.timezone) = v_cand then
                                return v_best;
                            end if;
                            -- a skipped local time: look on up to the local time it maps to
                            v_until := v_at at time zone _cron_next.timezone;
                        end if;
                    end loop;
                    exit when v_until is not null and v_day + make_time(v_h, 0, 0) >= v_until;
                end loop;
            end if;
        end if;
        v_day := v_day + 1;
    end loop;
    return v_best;
end;
$$;
