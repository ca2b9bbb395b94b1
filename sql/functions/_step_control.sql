-- _step_control: the control-flow options of a normalised step, as stored in steps.control.
--
-- Called by register_flow_version and add_step when they store a step (its argument is the
-- output of _normalize_step). Returns the object of the options wait_for, event_key,
-- wait_timeout, sleep, condition and run_if_skipped that the step has, or null when it has none (docs/control-flow.md).
-- Locks nothing; raises nothing; immutable.
create or replace function workflow._step_control(step jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
    select nullif(jsonb_strip_nulls(jsonb_build_object(
        'wait_for', _step_control.step -> 'wait_for',
        'event_key', _step_control.step -> 'event_key',
        'wait_timeout', _step_control.step -> 'wait_timeout',
        'sleep', _step_control.step -> 'sleep',
        'condition', _step_control.step -> 'condition',
        'run_if_skipped', _step_control.step -> 'run_if_skipped'
    )), '{}'::jsonb)
$$;
