-- prune_flow_versions: delete the flow versions retired before now - older_than that no run uses.
--
-- Called by prune (each call, after the runs) and by psql users, who get the count. A version is
-- deleted with its steps and dependencies once it has been retired for older_than and its last
-- run has been pruned; the current version is never retired, so never deleted. Versions are few:
-- each candidate's runs are probed through runs_flow_started_idx.
-- Locks: the candidates' flows rows FOR UPDATE SKIP LOCKED (as delete_flow_version, so no start
-- can begin a run on one meanwhile; a flow being started or registered right now is left for
-- the next call), then the versions' rows.
-- Errors: WF010 older_than null or negative. Returns the number of versions deleted. Safe to
-- repeat and to run concurrently.
create or replace function workflow.prune_flow_versions(
    older_than interval,
    now timestamptz default clock_timestamp()
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_deleted integer;
begin
    if prune_flow_versions.older_than is null or prune_flow_versions.older_than < interval '0' then
        raise exception 'older_than must be a non-negative interval, got %', coalesce(prune_flow_versions.older_than::text, 'null')
            using errcode = 'WF010', hint = 'For example workflow.prune_flow_versions(interval ''7 days'').';
    end if;
    with flows as materialized (
        select f.flow_slug, f.current_version_id from workflow.flows f
        where exists (
            select 1 from workflow.flow_versions v
            where v.flow_slug = f.flow_slug and v.retired_at < prune_flow_versions.now - prune_flow_versions.older_than
        )
        order by f.flow_slug
        for update skip locked
    )
    delete from workflow.flow_versions v
    using flows f
    where v.flow_slug = f.flow_slug
      and v.retired_at < prune_flow_versions.now - prune_flow_versions.older_than
      and v.version_id <> f.current_version_id
      and not exists (select 1 from workflow.runs r where r.flow_slug = v.flow_slug and r.version_id = v.version_id);
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;
