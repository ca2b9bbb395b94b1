-- list_flow_versions: the versions of a flow, newest first, with their run counts.
--
-- One row per version: its number, shape hash (flow_shape_hash of get_flow(slug, version)),
-- whether it is the current one (what a start without a version runs), when it was made and
-- retired, and how many runs use it: live_runs (status started, paused ones included) and
-- total_runs (every run not pruned). Called by psql users, the CLI (`flows SLUG --versions`),
-- the dashboard and clients. Counts read the flow's runs through runs_flow_started_idx: an
-- operator's query, not a hot path.
-- Locks nothing. Errors: WF002 unknown flow. Read-only.
create or replace function workflow.list_flow_versions(flow_slug text)
returns table (
    version integer,
    shape_hash text,
    is_current boolean,
    created_at timestamptz,
    retired_at timestamptz,
    live_runs bigint,
    total_runs bigint
)
language plpgsql
stable
set search_path = ''
as $$
begin
    if not exists (select 1 from workflow.flows f where f.flow_slug = list_flow_versions.flow_slug) then
        raise exception 'flow % does not exist', list_flow_versions.flow_slug using errcode = 'WF002';
    end if;
    return query
    select v.version,
        -- A version made by the 0008 upgrade has its hash stored at its next registration.
        coalesce(v.shape_hash, workflow.flow_shape_hash(workflow.get_flow(v.flow_slug, v.version))),
        v.version_id = f.current_version_id,
        v.created_at, v.retired_at,
        coalesce(c.live, 0), coalesce(c.total, 0)
    from workflow.flow_versions v
    join workflow.flows f on f.flow_slug = v.flow_slug
    left join (
        select r.version_id, count(*) filter (where r.status = 'started') as live, count(*) as total
        from workflow.runs r where r.flow_slug = list_flow_versions.flow_slug
        group by r.version_id
    ) as c on c.version_id = v.version_id
    where v.flow_slug = list_flow_versions.flow_slug
    order by v.version desc;
end;
$$;
