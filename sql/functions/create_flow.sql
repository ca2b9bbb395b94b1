-- create_flow: define a new, empty flow; steps are added with add_step.
--
-- Called by psql users, FlowBuilder.create_flow and register_flow. Inserts one flows row.
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
    return create_flow.flow_slug;
end;
$$;
