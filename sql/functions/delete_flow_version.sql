-- delete_flow_version: delete a flow version that no run uses, with its steps and dependencies.
--
-- Called by operators (psql, the CLI, clients); prune does the same for versions retired long
-- enough ago. The version's number is not reused: the next new shape gets one above the highest.
-- Runs that were pruned do not count; any run left, finished or not, keeps its version.
-- Locks: the flows row FOR UPDATE (so no start, which holds it FOR KEY SHARE, can begin a run
-- on the version between the check and the delete), then the version's rows.
-- Errors: WF002 unknown flow, WF020 unknown version, WF022 the version is the current one or
-- runs use it. Returns true. Not idempotent (a repeat raises WF020).
create or replace function workflow.delete_flow_version(flow_slug text, version integer)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    v_version record;
    v_runs bigint;
begin
    perform 1 from workflow.flows f where f.flow_slug = delete_flow_version.flow_slug for update;
    if not found then
        raise exception 'flow % does not exist', delete_flow_version.flow_slug using errcode = 'WF002';
    end if;
    select v.version_id, v.version_id = f.current_version_id as is_current into v_version
    from workflow.flow_versions v
    join workflow.flows f on f.flow_slug = v.flow_slug
    where v.flow_slug = delete_flow_version.flow_slug and v.version = delete_flow_version.version;
    if not found then
        raise exception 'flow % has no version %', delete_flow_version.flow_slug, delete_flow_version.version
            using errcode = 'WF020', hint = 'list_flow_versions shows the versions a flow has.';
    end if;
    if v_version.is_current then
        raise exception 'version % is the current version of flow %; it cannot be deleted',
            delete_flow_version.version, delete_flow_version.flow_slug
            using errcode = 'WF022', hint = 'Register the new shape first (register_flow); it becomes current.';
    end if;
    select count(*) into v_runs from workflow.runs r
    where r.flow_slug = delete_flow_version.flow_slug and r.version_id = v_version.version_id;
    if v_runs > 0 then
        raise exception 'version % of flow % is used by % run(s); it cannot be deleted',
            delete_flow_version.version, delete_flow_version.flow_slug, v_runs
            using errcode = 'WF022', hint = 'Retire it (retire_flow_version): prune deletes it once its runs are pruned.';
    end if;
    delete from workflow.flow_versions v where v.version_id = v_version.version_id;
    return true;
end;
$$;
