-- _wait_key: the event key a wait step of a run waits on.
--
-- control: the step's steps.control ({"wait_for", "event_key", ...}); event_key "run_id" gives the
-- run id as text, "input.<field>[.<field>...]" the scalar at that path of the run input, as text.
-- Returns null when the path is missing or holds an object, an array or null: _start_steps then
-- fails the run, naming the path. Called by _start_steps (through _start_waits), approve and
-- reject. Locks nothing; raises nothing; immutable.
create or replace function workflow._wait_key(control jsonb, run_id uuid, input jsonb)
returns text
language sql
immutable
set search_path = ''
as $$
    select case
        when _wait_key.control ->> 'event_key' = 'run_id' then _wait_key.run_id::text
        when jsonb_typeof(_wait_key.input #> string_to_array(substr(_wait_key.control ->> 'event_key', 7), '.'))
            in ('string', 'number', 'boolean')
            then _wait_key.input #>> string_to_array(substr(_wait_key.control ->> 'event_key', 7), '.')
    end
$$;
