-- flow_shape_hash: the hash that identifies a flow's shape, the one place it is computed.
--
-- definition: a flow description in the form register_flow accepts (or get_flow returns). The
-- shape is the flow timeout and every step after _normalize_step (its dependencies, type,
-- map source, execution, queue, resources, attempts, delays, lease), keyed by step slug: the
-- order steps are listed in, the flow's slug and the steps' priorities are not part of it (a
-- priority orders claims of the flow's steps in every version, and can change at run time by
-- set_step_priority: a change makes no new version, and workers that serve a version by its
-- hash keep serving it). Returns 16 hex digits
-- (the first 64 bits of a SHA-256 of the canonical jsonb text; jsonb orders keys, so equal
-- shapes give equal text). Two shapes of one slug colliding is a 2^-64 event.
-- Called by register_flow (is this shape known?), add_step (the version's new hash), and
-- workers, which register the hash of each definition they serve in their handlers:
-- `select workflow.flow_shape_hash('{"slug": ..., "steps": [...]}')`.
-- Locks nothing. Errors: those of _normalize_step for a malformed step (WF001, WF006, WF010);
-- WF010 when definition is not an object with a steps array. Pure: the same input gives the same
-- hash on every server of the same schema version.
create or replace function workflow.flow_shape_hash(definition jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_steps jsonb;
begin
    if jsonb_typeof(flow_shape_hash.definition) is distinct from 'object'
        or jsonb_typeof(flow_shape_hash.definition -> 'steps') is distinct from 'array' then
        raise exception 'a flow definition must be a JSON object with a "steps" array'
            using errcode = 'WF010';
    end if;
    select coalesce(jsonb_object_agg(n.step ->> 'slug', n.step), '{}'::jsonb) into v_steps
    from jsonb_array_elements(flow_shape_hash.definition -> 'steps') as s (step)
    cross join lateral (select workflow._normalize_step(s.step) - 'priority' as step) as n;
    return left(encode(sha256(convert_to(jsonb_build_object(
        'timeout', case when jsonb_typeof(flow_shape_hash.definition -> 'timeout') = 'number'
            then to_jsonb((flow_shape_hash.definition ->> 'timeout')::numeric::integer) end,
        'steps', v_steps
    )::text, 'UTF8')), 'hex'), 16);
end;
$$;
