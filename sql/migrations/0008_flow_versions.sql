-- 0008_flow_versions: a flow slug has versions; runs are pinned to the version they started on.
--
-- flow_versions: one row per shape a slug has had. shape_hash identifies the shape (steps,
-- dependencies, the options that change execution, the flow timeout); it is computed by
-- workflow.flow_shape_hash only, so no client re-implements it. version is the per-slug number
-- for humans (1, 2, ...). A version made by this upgrade from a flow registered before it has
-- shape_hash null until register_flow, add_step or list_flow_versions computes it (the hash
-- function is loaded after the migrations, so it cannot run here). retired_at: no new runs start
-- on it; runs in flight finish.
--
-- flows.current_version_id: the version a start uses when it names none. flows.timeout_seconds
-- stays as the current version's timeout (for readers of the table); the version row is the one
-- the engine reads.
--
-- steps and deps are keyed by version_id: each version holds its own steps. runs and
-- step_states record version_id, and every function that reads a run's shape joins through it.
-- Both are the same index probes as before (the keys only changed column), so the hot path
-- costs the same: an 8-byte column more per run and step state.
--
-- Compatibility: every flow becomes version 1 of itself, every run (finished or in flight) and
-- its step states point at it, so a run in flight during the upgrade finishes on its shape. Its
-- queued messages carry no "version"; the claim takes it from the run.
--
-- runs.version_id has no foreign key: a key would make every delete of a version scan runs.
-- delete_flow_version checks for runs under the flows row lock instead (starts hold that row
-- FOR KEY SHARE through runs.flow_slug's key, so the check and a start cannot interleave).

create table workflow.flow_versions (
    version_id bigint generated always as identity primary key,
    flow_slug text not null references workflow.flows (flow_slug) on delete cascade,
    version integer not null,
    shape_hash text,
    timeout_seconds integer,
    created_at timestamptz not null default now(),
    retired_at timestamptz,
    constraint version_number_is_unique unique (flow_slug, version),
    constraint version_is_positive check (version >= 1),
    constraint version_timeout_is_positive check (timeout_seconds is null or timeout_seconds > 0)
);

-- register_flow's no-op path: is this shape known? One probe.
create index flow_versions_hash_idx on workflow.flow_versions (flow_slug, shape_hash);

insert into workflow.flow_versions (flow_slug, version, timeout_seconds, created_at)
select
    f.flow_slug,
    1 as version,
    f.timeout_seconds,
    f.created_at
from workflow.flows as f
order by f.flow_slug;

alter table workflow.flows add column current_version_id bigint references workflow.flow_versions (version_id);
update workflow.flows as f set current_version_id = v.version_id
from workflow.flow_versions as v
where v.flow_slug = f.flow_slug;

-- steps and deps: re-keyed by version
alter table workflow.deps drop constraint deps_flow_slug_step_slug_fkey;
alter table workflow.deps drop constraint deps_flow_slug_dep_slug_fkey;
alter table workflow.deps drop constraint deps_pkey;
drop index workflow.deps_dep_idx;
alter table workflow.steps drop constraint steps_pkey;
alter table workflow.steps drop constraint step_index_is_unique;

alter table workflow.steps add column version_id bigint;
update workflow.steps as s set version_id = v.version_id
from workflow.flow_versions as v
where v.flow_slug = s.flow_slug;
alter table workflow.steps alter column version_id set not null;
alter table workflow.steps add constraint steps_version_fkey
foreign key (version_id) references workflow.flow_versions (version_id) on delete cascade;
alter table workflow.steps add primary key (version_id, step_slug);
alter table workflow.steps add constraint step_index_is_unique unique (version_id, step_index);
-- _release_workers lists the queues in use; steps keep flow_slug for readers of the table.
create index steps_flow_idx on workflow.steps (flow_slug);

alter table workflow.deps add column version_id bigint;
update workflow.deps as d set version_id = v.version_id
from workflow.flow_versions as v
where v.flow_slug = d.flow_slug;
alter table workflow.deps alter column version_id set not null;
alter table workflow.deps add primary key (version_id, step_slug, dep_slug);
alter table workflow.deps add constraint deps_step_fkey
foreign key (version_id, step_slug) references workflow.steps (version_id, step_slug) on delete cascade;
alter table workflow.deps add constraint deps_dep_fkey
foreign key (version_id, dep_slug) references workflow.steps (version_id, step_slug) on delete cascade;
-- Walk from a step to its dependents (the completion path's direction).
create index deps_dep_idx on workflow.deps (version_id, dep_slug);

-- runs and step states: pinned to their version
alter table workflow.runs add column version_id bigint;
update workflow.runs as r set version_id = f.current_version_id
from workflow.flows as f
where f.flow_slug = r.flow_slug;
alter table workflow.runs alter column version_id set not null;

alter table workflow.step_states add column version_id bigint;
update workflow.step_states as ss set version_id = r.version_id
from workflow.runs as r
where r.run_id = ss.run_id;
alter table workflow.step_states alter column version_id set not null;

-- retry_failed_workflow(on_current => true) records each step whose output it reused.
alter table workflow.events drop constraint event_is_known;
alter table workflow.events add constraint event_is_known check (event in (
    'run_started', 'step_completed', 'step_failed', 'run_completed', 'run_failed',
    'run_cancelled', 'run_paused', 'run_resumed', 'step_reused'
));

-- Signatures that gained parameters: dropped so the reload creates them afresh instead of
-- adding overloads that would make existing calls ambiguous.
drop function if exists workflow.start_flow(text, jsonb, uuid, integer, timestamptz, text);
drop function if exists workflow.start_flows(text, jsonb[], uuid[], integer, timestamptz, text);
drop function if exists workflow.retry_failed_workflow(uuid, boolean, boolean, timestamptz, text);
drop function if exists workflow.get_flow(text);
