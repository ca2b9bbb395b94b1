-- _eval_condition: whether a step's condition holds for a run, when the step is ready to start.
--
-- condition: a condition that _check_condition accepted; run_id and input: the run's, to read
-- the run input (input.<field>...) and the outputs of the step's dependencies (<dep>.<field>...;
-- a skipped dependency's output is null). A path that is missing reads as null, which equals
-- only a null value, is not in any array, compares false with gt/gte/lt/lte, and does not exist.
-- Called by _start_steps. Reads step_states; locks nothing; raises nothing. Pure data
-- comparisons: no code in the condition is ever executed.
create or replace function workflow._eval_condition(condition jsonb, run_id uuid, input jsonb)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
    v_path text[];
    v_value jsonb;
    v_want jsonb;
    v_op text;
begin
    if _eval_condition.condition ? 'all' then
        return not exists (
            select 1 from jsonb_array_elements(_eval_condition.condition -> 'all') as c
            where not workflow._eval_condition(c, _eval_condition.run_id, _eval_condition.input)
        );
    elsif _eval_condition.condition ? 'any' then
        return exists (
            select 1 from jsonb_array_elements(_eval_condition.condition -> 'any') as c
            where workflow._eval_condition(c, _eval_condition.run_id, _eval_condition.input)
        );
    elsif _eval_condition.condition ? 'not' then
        return not workflow._eval_condition(_eval_condition.condition -> 'not', _eval_condition.run_id, _eval_condition.input);
    end if;

    v_path := string_to_array(_eval_condition.condition ->> 'path', '.');
    if v_path[1] = 'input' then
        v_value := _eval_condition.input #> v_path[2:];
    else
        select ss.output #> v_path[2:] into v_value
        from workflow.step_states ss
        where ss.run_id = _eval_condition.run_id and ss.step_slug = v_path[1];
    end if;
    v_value := coalesce(v_value, 'null'::jsonb);
    v_want := _eval_condition.condition -> 'value';
    v_op := _eval_condition.condition ->> 'op';
    return case v_op
        when 'exists' then v_value <> 'null'::jsonb
        when 'eq' then v_value = v_want
        when 'ne' then v_value <> v_want
        when 'in' then exists (select 1 from jsonb_array_elements(v_want) as w where w = v_value)
        else coalesce(case
            when jsonb_typeof(v_value) = 'number' and jsonb_typeof(v_want) = 'number' then
                case v_op when 'gt' then (v_value #>> '{}')::numeric > (v_want #>> '{}')::numeric
                          when 'gte' then (v_value #>> '{}')::numeric >= (v_want #>> '{}')::numeric
                          when 'lt' then (v_value #>> '{}')::numeric < (v_want #>> '{}')::numeric
                          when 'lte' then (v_value #>> '{}')::numeric <= (v_want #>> '{}')::numeric end
            when jsonb_typeof(v_value) = 'string' and jsonb_typeof(v_want) = 'string' then
                case v_op when 'gt' then (v_value #>> '{}') > (v_want #>> '{}') collate "C"
                          when 'gte' then (v_value #>> '{}') >= (v_want #>> '{}') collate "C"
                          when 'lt' then (v_value #>> '{}') < (v_want #>> '{}') collate "C"
                          when 'lte' then (v_value #>> '{}') <= (v_want #>> '{}') collate "C" end
        end, false)
    end;
end;
$$;
