-- get_flow: a flow's definition as JSON, in the form register_flow accepts.
--
-- {"slug", "timeout", "steps": [normalised step, ... in the order they were added]}.
-- Called by register_flow (shape comparison), the CLI and clients. Locks nothing.
-- Errors: WF002 unknown flow. Read-only.
create or replace function workflow.get_flow(flow_slug text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
    v_result jsonb;
begin
    select jsonb_build_object(
        'slug', f.flow_slug,
        'timeout', f.timeout_seconds,
        'steps', coalesce((
            select jsonb_agg(jsonb_build_object(
                'slug', s.step_slug,
                'depends_on', coalesce((
                    select jsonb_agg(d.dep_slug order by d.dep_slug)
                    from workflow.deps d where d.flow_slug = s.flow_slug and d.step_slug = s.step_slug
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
            ) order by s.step_index)
            from workflow.steps s where s.flow_slug = f.flow_slug
        ), '[]')
    ) into v_result
    from workflow.flows f where f.flow_slug = get_flow.flow_slug;
    if v_result is null then
        raise exception 'flow % does not exist', get_flow.flow_slug using errcode = 'WF002';
    end if;
    return v_result;
end;
$$;
