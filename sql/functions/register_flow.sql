-- register_flow: register a flow from one JSON description, idempotently; returns its slug.
--
-- The form psql users and clients have always called: register_flow_version does the work
-- (see there: a known shape is a no-op, a new one becomes the current version) and this returns
-- the slug only. Errors and locks: those of register_flow_version. Safe to repeat.
create or replace function workflow.register_flow(definition jsonb)
returns text
language sql
set search_path = ''
as $$
    select v.flow_slug from workflow.register_flow_version(register_flow.definition) as v;
$$;
