-- _parse_cron: parse a 5-field cron expression into the values each field allows.
--
-- The one cron parser. Called by create_schedule and update_schedule (to refuse a bad
-- expression before anything is stored) and by _cron_next (to evaluate one). No dynamic SQL and
-- no code execution: the expression is split and matched against fixed patterns only.
-- Fields, in order: minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or jan-dec), day of
-- week 0-7 (0 and 7 are Sunday, or sun-sat). Each field is a comma-separated list of items;
-- an item is *, a value, a range a-b, and either of the last two or * with a step /n
-- (*/15, 1-30/2, 5/10 meaning 5-max/10). Names are case-insensitive and allowed in ranges
-- (mon-fri). Shorthands: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
-- As in Vixie cron, when both day of month and day of week are restricted (neither starts with
-- *), a day matches if it matches either; dom_any / dow_any say whether each one is *.
-- Returns {"minute": [..], "hour": [..], "dom": [..], "month": [..], "dow": [..],
-- "dom_any": bool, "dow_any": bool}, every list sorted and without duplicates (dow uses 0-6).
-- Errors: WF027, naming the field and why (wrong number of fields, unknown name, value out of
-- range, a range that runs backwards, a step that is not a positive integer, an empty item).
-- Locks nothing. Immutable.
create or replace function workflow._parse_cron(cron text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_expr text := lower(btrim(coalesce(_parse_cron.cron, '')));
    v_fields text[];
    v_names text[] := array['minute', 'hour', 'day of month', 'month', 'day of week'];
    v_keys text[] := array['minute', 'hour', 'dom', 'month', 'dow'];
    v_min integer[] := array[0, 0, 1, 1, 0];
    v_max integer[] := array[59, 23, 31, 12, 7];
    v_months text[] := array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
    v_days text[] := array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    v_result jsonb := '{}'::jsonb;
    v_values integer[];
    v_item text;
    v_range text;
    v_step integer;
    v_lo integer;
    v_hi integer;
    v_parts text[];
    v_token text;
    v_bound integer;
begin
    v_expr := case v_expr
        when '@yearly' then '0 0 1 1 *'
        when '@annually' then '0 0 1 1 *'
        when '@monthly' then '0 0 1 * *'
        when '@weekly' then '0 0 * * 0'
        when '@daily' then '0 0 * * *'
        when '@midnight' then '0 0 * * *'
        when '@hourly' then '0 * * * *'
        else v_expr
    end;
    if v_expr like '@%' then
        raise exception 'invalid cron expression %: unknown shorthand %', quote_literal(_parse_cron.cron), v_expr
            using errcode = 'WF027', hint = 'Shorthands: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly.';
    end if;
    v_fields := regexp_split_to_array(v_expr, '\s+');
    if v_expr = '' or cardinality(v_fields) <> 5 then
        raise exception 'invalid cron expression %: expected 5 fields (minute hour day-of-month month day-of-week), got %',
            quote_literal(_parse_cron.cron), case when v_expr = '' then 0 else cardinality(v_fields) end
            using errcode = 'WF027', hint = 'For example ''*/15 9-17 * * mon-fri'' or ''@daily''.';
    end if;

    for v_i in 1..5 loop
        v_values := '{}';
        foreach v_item in array string_to_array(v_fields[v_i], ',') loop
            if v_item = '' then
                raise exception 'invalid cron expression %: % field has an empty list item', quote_literal(_parse_cron.cron), v_names[v_i]
                    using errcode = 'WF027';
            end if;
            -- item = range [/ step]
            v_parts := string_to_array(v_item, '/');
            if cardinality(v_parts) > 2 then
                raise exception 'invalid cron expression %: % field item % has more than one /', quote_literal(_parse_cron.cron), v_names[v_i], quote_literal(v_item)
                    using errcode = 'WF027';
            end if;
            v_range := v_parts[1];
            v_step := 1;
            if cardinality(v_parts) = 2 then
                if v_parts[2] !~ '^[0-9]{1,3}$' or v_parts[2]::integer = 0 then
                    raise exception 'invalid cron expression %: % field step % must be a positive integer', quote_literal(_parse_cron.cron), v_names[v_i], quote_literal(v_parts[2])
                        using errcode = 'WF027';
                end if;
                v_step := v_parts[2]::integer;
            end if;
            if v_range = '*' then
                v_lo := v_min[v_i];
                v_hi := case when v_i = 5 then 6 else v_max[v_i] end;
            else
                v_parts := string_to_array(v_range, '-');
                if cardinality(v_parts) > 2 then
                    raise exception 'invalid cron expression %: % field item % is not a value or a range a-b', quote_literal(_parse_cron.cron), v_names[v_i], quote_literal(v_item)
                        using errcode = 'WF027';
                end if;
                for v_j in 1..cardinality(v_parts) loop
                    v_token := v_parts[v_j];
                    if v_token ~ '^[0-9]{1,2}$' then
                        v_bound := v_token::integer;
                    elsif v_i = 4 and v_token = any(v_months) then
                        v_bound := array_position(v_months, v_token);
                    elsif v_i = 5 and v_token = any(v_days) then
                        v_bound := array_position(v_days, v_token) - 1;
                    else
                        raise exception 'invalid cron expression %: % field value % is not a number%', quote_literal(_parse_cron.cron), v_names[v_i], quote_literal(v_token),
                            case v_i when 4 then ' or a month name (jan-dec)' when 5 then ' or a day name (sun-sat)' else '' end
                            using errcode = 'WF027';
                    end if;
                    if v_bound not between v_min[v_i] and v_max[v_i] then
                        raise exception 'invalid cron expression %: % field value % is out of range %-%', quote_literal(_parse_cron.cron), v_names[v_i], v_bound, v_min[v_i], v_max[v_i]
                            using errcode = 'WF027';
                    end if;
                    if v_j = 1 then v_lo := v_bound; end if;
                    v_hi := v_bound;
                end loop;
                -- 5/10 means 5-max/10, as in Vixie cron
                if cardinality(v_parts) = 1 and v_step > 1 then
                    v_hi := case when v_i = 5 then 6 else v_max[v_i] end;
                end if;
                if v_lo > v_hi then
                    raise exception 'invalid cron expression %: % field range %-% runs backwards', quote_literal(_parse_cron.cron), v_names[v_i], v_lo, v_hi
                        using errcode = 'WF027', hint = 'Write the smaller value first, or list two ranges: 22-23,0-2.';
                end if;
            end if;
            v_values := v_values || array(select g from generate_series(v_lo, v_hi, v_step) as g);
        end loop;
        if v_i = 5 then
            -- 7 is Sunday too
            v_values := array(select case when g = 7 then 0 else g end from unnest(v_values) as g);
        end if;
        v_result := v_result || jsonb_build_object(v_keys[v_i],
            to_jsonb(array(select distinct g from unnest(v_values) as g order by g)));
    end loop;
    return v_result || jsonb_build_object(
        'dom_any', v_fields[3] like '*%',
        'dow_any', v_fields[5] like '*%');
end;
$$;
