-- _sleep_wake: when a step with the sleep option may start its tasks.
--
-- sleep: the step's normalised option (steps.control -> 'sleep'): whole seconds, or a path
-- "input.<field>..." into the run input or "<dependency>.<field>..." into a dependency's output.
-- The value at a path is a number of seconds (a negative one counts as 0) or a timestamp
-- (ISO 8601 text, e.g. "2026-12-01T20:00:00Z") to sleep until. Returns now + seconds, the
-- timestamp, or null when the path is missing or holds anything else (_start_steps then fails
-- the run, naming the path). Called by _start_steps. Reads the dependency's step_states row;
-- locks nothing; raises nothing (a malformed timestamp is caught and gives null).
create or replace function workflow._sleep_wake(sleep jsonb, run_id uuid, input jsonb, now timestamptz)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
    v_path text[];
    v_value jsonb;
begin
    if jsonb_typeof(_sleep_wake.sleep) = 'number' then
        return _sleep_wake.now + make_interval(secs => (_sleep_wake.sleep #>> '{}')::double precision);
    end if;
    v_path := string_to_array(_sleep_wake.sleep #>> '{}', '.');
    if v_path[1] = 'input' then
        v_value := _sleep_wake.input #> v_path[2:];
    else
        select ss.output #> v_path[2:] into v_value
        from workflow.step_states ss
        where ss.run_id = _sleep_wake.run_id and ss.step_slug = v_path[1];
    end if;
    if jsonb_typeof(v_value) = 'number' then
        return _sleep_wake.now + make_interval(secs => greatest((v_value #>> '{}')::double precision, 0));
    elsif jsonb_typeof(v_value) = 'string' then
        begin
            return (v_value #>> '{}')::timestamptz;
        exception when data_exception then
            return null;
        end;
    end if;
    return null;
end;
$$;
