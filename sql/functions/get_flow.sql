-- get_flow: a flow version's definition as JSON, in the form register_flow accepts.
--
-- {"slug", "timeout", "steps": [normalised step, ... in the order they were added]}.
-- version: the version number (list_flow_versions); null, the default, is the current version.
-- flow_shape_hash of the result is the version's shape hash.
-- Called by register_flow_version and add_step (hashing a stored shape), the CLI, the dashboard
-- and clients. Locks nothing.
-- Errors: WF002 unknown flow, WF020 unknown version. Read-only.
create or replace function workflow.get_flow(flow_slug text, version integer default null)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
    v_vid bigint;
    v_result jsonb;
begin
    select coalesce(v.version_id, case when get_flow.version is null then f.current_version_id end) into v_vid
    from workflow.flows f
    left join workflow.flow_versions v on v.flow_slug = f.flow_slug and v.version = get_flow.version
    where f.flow_slug = get_flow.flow_slug;
    if not found then
        raise exception 'flow % does not exist', get_flow.flow_slug using errcode = 'WF002';
    end if;
    if v_vid is null then
        raise exception 'flow % has no version %', get_flow.flow_slug, get_flow.version
            using errcode = 'WF020', hint = 'list_flow_versions shows the versions a flow has.';
    end if;
    select jsonb_build_object(
        'slug', v.flow_slug,
        'timeout', v.timeout_seconds,
        'steps', coalesce((
            select jsonb_agg(jsonb_build_object(
                'slug', s.step_slug,
                'depends_on', coalesce((
                    select jsonb_agg(d.dep_slug order by d.dep_slug)
                    from workflow.deps d where d.version_id = s.version_id and d.step_slug = s.step_slug
                ), '[]'),
                'type', s.step_type,
                'map_over', s.map_over,
                'execution', s.execution,
                'queue', s.queue_name,
                'resources', to_jsonb(s.required_resources),
                'max_attempts', s.max_attempts,
                'base_delay', s.base_delay_seconds,
                'timeout', s.timeout_seconds,
                'start_delay', s.start_delay_seconds
            ) || coalesce(s.control, '{}'::jsonb) order by s.step_index)
            from workflow.steps s where s.version_id = v.version_id
        ), '[]')
    ) into v_result
    from workflow.flow_versions v where v.version_id = v_vid;
    return v_result;
end;
$$;
