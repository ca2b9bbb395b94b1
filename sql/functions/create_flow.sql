-- create_flow: define a new, empty flow; steps are added with add_step.
--
-- Called by psql users and FlowBuilder.create_flow. Inserts one flows row and its version 1
-- (no steps yet; add_step fills it and keeps its shape hash).
-- timeout_seconds: default run deadline for runs of this flow (null: none).
-- Errors: WF001 invalid name, WF010 bad timeout, WF015 flow exists. Not idempotent: a second
-- call with the same slug raises WF015 (register_flow is the idempotent form).
create or replace function workflow.create_flow(flow_slug text, timeout_seconds integer default null)
returns text
language plpgsql
set search_path = ''
as $$
begin
    perform workflow._validate_name('flow', create_flow.flow_slug);
    if create_flow.timeout_seconds is not null and create_flow.timeout_seconds < 1 then
        raise exception 'flow timeout must be at least 1 second, got %', create_flow.timeout_seconds
            using errcode = 'WF010';
    end if;
    insert into workflow.flows (flow_slug, timeout_seconds)
    values (create_flow.flow_slug, create_flow.timeout_seconds)
    on conflict do nothing;
    if not found then
        raise exception 'flow % already exists', create_flow.flow_slug
            using errcode = 'WF015', hint = 'Use register_flow for idempotent registration, or pick another slug.';
    end if;
    with v as (
        insert into workflow.flow_versions (flow_slug, version, shape_hash, timeout_seconds)
        values (create_flow.flow_slug, 1,
            workflow.flow_shape_hash(jsonb_build_object('timeout', create_flow.timeout_seconds, 'steps', '[]'::jsonb)),
            create_flow.timeout_seconds)
        returning workflow.flow_versions.version_id
    )
    update workflow.flows f set current_version_id = v.version_id
    from v
    where f.flow_slug = create_flow.flow_slug;
    return create_flow.flow_slug;
end;
$$;
