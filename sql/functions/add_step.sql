-- add_step: append a step to a flow's current version, or to a new version when runs use it.
--
-- Called by psql users, FlowBuilder.add_step and register_flow. Options left null take the
-- defaults of _normalize_step (single, local on the reserved queue "local" (queue "default"
-- for a distributed step that names none), 3 attempts, 1 s base delay, 60 s lease, no start
-- delay, no resources). Dependencies must already exist, so a
-- flow built one step at a time can never contain a cycle. Creates the step's pgmq queue if it
-- does not exist (DDL, so definitions are not a hot path).
-- Versions: while no run uses the current version, the step is added to it (a flow built step by
-- step is one version). Once a run uses it, the first add_step copies it into a new version
-- (numbered one above the highest) and makes that current, so runs in flight keep their shape
-- and the next start runs on the new one; later add_step calls keep adding to the new version
-- until a run uses it. Either way the version's shape hash is recomputed (flow_shape_hash).
-- Locks: the flows row (FOR UPDATE), serialising concurrent add_step calls on one flow, and
-- waiting for starts in progress (they hold it FOR KEY SHARE), so "does a run use it" is exact.
-- Returns the normalised step (as get_flow shows it).
-- Errors: WF002 unknown flow, WF001 bad name, WF004 duplicate step, WF003 unknown dependency,
-- WF006 self dependency, WF010 bad option. On error nothing changes (no version is made).
-- Not idempotent (a repeat raises WF004).
create or replace function workflow.add_step(
    flow_slug text,
    step_slug text,
    depends_on text[] default '{}',
    step_type text default null,
    map_over text default null,
    execution text default null,
    queue_name text default null,
    max_attempts integer default null,
    base_delay integer default null,
    timeout integer default null,
    start_delay integer default null,
    resources text[] default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_step jsonb;
    v_missing text[];
    v_index integer;
    v_vid bigint;
    v_new bigint;
begin
    -- GUARD: the flow exists, has no runs, and the step is new
    perform workflow._validate_name('flow', add_step.flow_slug);
    select f.current_version_id into v_vid from workflow.flows f where f.flow_slug = add_step.flow_slug for update;
    if not found then
        raise exception 'flow % does not exist', add_step.flow_slug using errcode = 'WF002';
    end if;

    v_step := workflow._normalize_step(jsonb_strip_nulls(jsonb_build_object(
        'slug', add_step.step_slug,
        'depends_on', to_jsonb(coalesce(add_step.depends_on, '{}')),
        'type', add_step.step_type,
        'map_over', add_step.map_over,
        'execution', add_step.execution,
        'queue', add_step.queue_name,
        'max_attempts', add_step.max_attempts,
        'base_delay', add_step.base_delay,
        'timeout', add_step.timeout,
        'start_delay', add_step.start_delay,
        'resources', to_jsonb(add_step.resources)
    )));

    if exists (select 1 from workflow.steps s where s.version_id = v_vid and s.step_slug = v_step ->> 'slug') then
        raise exception 'flow % already has a step %', add_step.flow_slug, v_step ->> 'slug' using errcode = 'WF004';
    end if;
    select array_agg(d order by d) into v_missing
    from jsonb_array_elements_text(v_step -> 'depends_on') as d
    where not exists (select 1 from workflow.steps s where s.version_id = v_vid and s.step_slug = d);
    if v_missing is not null then
        raise exception 'step % depends on unknown step(s): %', v_step ->> 'slug', array_to_string(v_missing, ', ')
            using errcode = 'WF003', hint = 'Add dependencies before the steps that depend on them.';
    end if;

    -- PHASE 1: a version that runs use never changes: copy it into a new current version
    if exists (select 1 from workflow.runs r where r.flow_slug = add_step.flow_slug and r.version_id = v_vid) then
        insert into workflow.flow_versions (flow_slug, version, timeout_seconds)
        select add_step.flow_slug, (select max(o.version) + 1 from workflow.flow_versions o where o.flow_slug = add_step.flow_slug),
            v.timeout_seconds
        from workflow.flow_versions v where v.version_id = v_vid
        returning workflow.flow_versions.version_id into v_new;
        insert into workflow.steps (
            version_id, flow_slug, step_slug, step_index, step_type, map_over, execution, queue_name, max_attempts,
            base_delay_seconds, timeout_seconds, start_delay_seconds, required_resources, deps_count, control
        )
        select v_new, s.flow_slug, s.step_slug, s.step_index, s.step_type, s.map_over, s.execution, s.queue_name,
            s.max_attempts, s.base_delay_seconds, s.timeout_seconds, s.start_delay_seconds, s.required_resources, s.deps_count,
            s.control
        from workflow.steps s where s.version_id = v_vid;
        insert into workflow.deps (version_id, flow_slug, step_slug, dep_slug)
        select v_new, d.flow_slug, d.step_slug, d.dep_slug from workflow.deps d where d.version_id = v_vid;
        update workflow.flows f set current_version_id = v_new where f.flow_slug = add_step.flow_slug;
        v_vid := v_new;
    end if;

    -- PHASE 2: store the step and its edges; the version's hash follows its new shape
    select coalesce(max(s.step_index) + 1, 0) into v_index from workflow.steps s where s.version_id = v_vid;
    insert into workflow.steps (
        version_id, flow_slug, step_slug, step_index, step_type, map_over, execution, queue_name, max_attempts,
        base_delay_seconds, timeout_seconds, start_delay_seconds, required_resources, deps_count
    ) values (
        v_vid, add_step.flow_slug, v_step ->> 'slug', v_index, v_step ->> 'type', v_step ->> 'map_over',
        v_step ->> 'execution', v_step ->> 'queue', (v_step ->> 'max_attempts')::integer,
        (v_step ->> 'base_delay')::integer, (v_step ->> 'timeout')::integer, (v_step ->> 'start_delay')::integer,
        array(select jsonb_array_elements_text(v_step -> 'resources')), jsonb_array_length(v_step -> 'depends_on')
    );
    insert into workflow.deps (version_id, flow_slug, step_slug, dep_slug)
    select v_vid, add_step.flow_slug, v_step ->> 'slug', d from jsonb_array_elements_text(v_step -> 'depends_on') as d;

    update workflow.flow_versions v
    set shape_hash = workflow.flow_shape_hash(workflow.get_flow(add_step.flow_slug, v.version))
    where v.version_id = v_vid;
    -- PHASE 3: make sure the queue exists (pgmq.create is idempotent but runs DDL; skip it when known)
    if not exists (select 1 from pgmq.meta m where m.queue_name = v_step ->> 'queue') then
        perform pgmq.create(v_step ->> 'queue');
        perform workflow._tune_queue(v_step ->> 'queue');
    end if;
    return v_step;
end;
$$;
