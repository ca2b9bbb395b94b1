-- retire_flow_version: mark a flow version retired: it starts no new runs; runs in flight finish.
--
-- Called by operators (psql, the CLI, clients) after a deploy, once no code starts the old
-- version any more. A start naming a retired version is refused (WF021); retry_failed_workflow
-- of one of its runs still runs on it unless asked to use the current version. prune deletes
-- retired versions that no run uses any more. Returns when the version was retired (the first
-- call's time on a repeat).
-- Locks: the version's row (FOR UPDATE), so two calls serialise.
-- Errors: WF002 unknown flow, WF020 unknown version, WF022 the version is the current one (a
-- flow always has a version to start). Safe to repeat.
create or replace function workflow.retire_flow_version(
    flow_slug text,
    version integer,
    now timestamptz default clock_timestamp()
)
returns timestamptz
language plpgsql
set search_path = ''
as $$
declare
    v_version record;
begin
    if not exists (select 1 from workflow.flows f where f.flow_slug = retire_flow_version.flow_slug) then
        raise exception 'flow % does not exist', retire_flow_version.flow_slug using errcode = 'WF002';
    end if;
    select v.version_id, v.retired_at, v.version_id = f.current_version_id as is_current into v_version
    from workflow.flow_versions v
    join workflow.flows f on f.flow_slug = v.flow_slug
    where v.flow_slug = retire_flow_version.flow_slug and v.version = retire_flow_version.version
    for update of v;
    if not found then
        raise exception 'flow % has no version %', retire_flow_version.flow_slug, retire_flow_version.version
            using errcode = 'WF020', hint = 'list_flow_versions shows the versions a flow has.';
    end if;
    if v_version.is_current then
        raise exception 'version % is the current version of flow %; it cannot be retired',
            retire_flow_version.version, retire_flow_version.flow_slug
            using errcode = 'WF022', hint = 'Register the new shape first (register_flow); it becomes current, then retire this one.';
    end if;
    if v_version.retired_at is not null then
        return v_version.retired_at;
    end if;
    update workflow.flow_versions v set retired_at = retire_flow_version.now where v.version_id = v_version.version_id;
    return retire_flow_version.now;
end;
$$;
