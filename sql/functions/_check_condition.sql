-- _check_condition: validate a step's condition (docs/control-flow.md, "Conditions").
--
-- A condition is JSON, never code: a comparison {"path": "<where>", "op": "<op>", "value": v}
-- or a combination {"all": [c, ...]}, {"any": [c, ...]}, {"not": c}. path is input.<field>...
-- (the run input) or <dependency>[.<field>...] (that dependency's output), the dependency being
-- one of depends_on; op is eq, ne (JSON equality), gt, gte, lt, lte (numbers numerically,
-- strings as text; a value of another type compares false), in (value is an array that holds
-- the value at path), exists (the path holds a value other than JSON null; no "value").
-- At most 8 levels deep and 64 comparisons. Called by _normalize_step for the condition
-- option (depth 1; it recurses). Locks nothing; immutable.
-- Errors: WF036 malformed (not one of the shapes above, an unknown op, a missing or misplaced
-- value, too deep or too large); WF037 a path naming a step that is not a dependency.
create or replace function workflow._check_condition(
    condition jsonb,
    step_slug text,
    deps text[],
    depth integer default 1
)
returns integer
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_rules jsonb := workflow.definition_rules() -> 'control';
    v_keys text[];
    v_count integer := 0;
    v_part jsonb;
    v_head text;
    v_op text;
begin
    if _check_condition.depth > 8 then
        raise exception 'step %: condition is nested more than 8 levels deep', _check_condition.step_slug
            using errcode = 'WF036';
    end if;
    if jsonb_typeof(_check_condition.condition) is distinct from 'object' then
        raise exception 'step %: a condition must be a JSON object, got %', _check_condition.step_slug,
            coalesce(_check_condition.condition::text, 'null')
            using errcode = 'WF036',
                hint = 'Example: {"path": "review.approved", "op": "eq", "value": true}; combine with all, any, not.';
    end if;
    select array_agg(k order by k) into v_keys from jsonb_object_keys(_check_condition.condition) as k;
    if v_keys in (array['all'], array['any']) then
        if jsonb_typeof(_check_condition.condition -> v_keys[1]) <> 'array'
            or jsonb_array_length(_check_condition.condition -> v_keys[1]) = 0 then
            raise exception 'step %: condition "%" must be a non-empty array of conditions', _check_condition.step_slug, v_keys[1]
                using errcode = 'WF036';
        end if;
        for v_part in select jsonb_array_elements(_check_condition.condition -> v_keys[1]) loop
            v_count := v_count + workflow._check_condition(v_part, _check_condition.step_slug, _check_condition.deps,
                _check_condition.depth + 1);
        end loop;
    elsif v_keys = array['not'] then
        v_count := workflow._check_condition(_check_condition.condition -> 'not', _check_condition.step_slug,
            _check_condition.deps, _check_condition.depth + 1);
    elsif v_keys in (array['op', 'path'], array['op', 'path', 'value']) then
        v_op := _check_condition.condition ->> 'op';
        if jsonb_typeof(_check_condition.condition -> 'path') is distinct from 'string'
            or (_check_condition.condition ->> 'path') !~ (v_rules ->> 'path') then
            raise exception 'step %: condition path must be input.<field>... or <dependency>[.<field>...], got %',
                _check_condition.step_slug, _check_condition.condition -> 'path'
                using errcode = 'WF036';
        end if;
        v_head := split_part(_check_condition.condition ->> 'path', '.', 1);
        if v_head = 'input' and position('.' in _check_condition.condition ->> 'path') = 0 then
            raise exception 'step %: condition path input needs a field (input.<field>)', _check_condition.step_slug
                using errcode = 'WF036';
        end if;
        if v_head <> 'input' and not v_head = any(_check_condition.deps) then
            raise exception 'step %: condition path % names %, which is not one of its dependencies (%)',
                _check_condition.step_slug, _check_condition.condition ->> 'path', v_head,
                coalesce(nullif(array_to_string(_check_condition.deps, ', '), ''), 'none')
                using errcode = 'WF037', hint = 'A condition reads the run input or the outputs of the step''s dependencies.';
        end if;
        if v_op is null or not v_op = any(array['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'exists']) then
            raise exception 'step %: condition op must be eq, ne, gt, gte, lt, lte, in or exists, got %',
                _check_condition.step_slug, coalesce(_check_condition.condition -> 'op', 'null')
                using errcode = 'WF036';
        end if;
        if (v_op = 'exists') = (_check_condition.condition ? 'value') then
            raise exception 'step %: condition op % %', _check_condition.step_slug, v_op,
                case when v_op = 'exists' then 'takes no value' else 'needs a value' end
                using errcode = 'WF036';
        end if;
        if v_op = 'in' and jsonb_typeof(_check_condition.condition -> 'value') <> 'array' then
            raise exception 'step %: condition op in needs an array value', _check_condition.step_slug
                using errcode = 'WF036';
        end if;
        if v_op in ('gt', 'gte', 'lt', 'lte') and jsonb_typeof(_check_condition.condition -> 'value') not in ('number', 'string') then
            raise exception 'step %: condition op % needs a number or a string value', _check_condition.step_slug, v_op
                using errcode = 'WF036';
        end if;
        v_count := 1;
    else
        raise exception 'step %: a condition has keys path, op (and value), or one of all, any, not; got %',
            _check_condition.step_slug, coalesce(array_to_string(v_keys, ', '), 'none')
            using errcode = 'WF036',
                hint = 'Example: {"path": "review.approved", "op": "eq", "value": true}; combine with all, any, not.';
    end if;
    if v_count > 64 then
        raise exception 'step %: condition has % comparisons, more than 64', _check_condition.step_slug, v_count
            using errcode = 'WF036';
    end if;
    return v_count;
end;
$$;
