-- add_step: append a step to a flow that has no runs yet.
--
-- Called by psql users, FlowBuilder.add_step and register_flow. Options left null take the
-- defaults of _normalize_step (single, local on the reserved queue "local" (queue "default"
-- for a distributed step that names none), 3 attempts, 1 s base delay, 60 s lease, no start
-- delay, no resources). Dependencies must already exist, so a
-- flow built one step at a time can never contain a cycle. Creates the step's pgmq queue if it
-- does not exist (DDL, so definitions are not a hot path).
-- Locks: the flows row (FOR UPDATE), serialising concurrent add_step calls on one flow.
-- Returns the normalised step (as get_flow shows it).
-- Errors: WF002 unknown flow, WF001 bad name, WF004 duplicate step, WF003 unknown dependency,
-- WF006 self dependency, WF008 flow already has runs, WF010 bad option. On error nothing
-- changes. Not idempotent (a repeat raises WF004).
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
begin
    -- GUARD: the flow exists, has no runs, and the step is new
    perform workflow._validate_name('flow', add_step.flow_slug);
    perform 1 from workflow.flows f where f.flow_slug = add_step.flow_slug for update;
    if not found then
        raise exception 'flow % does not exist', add_step.flow_slug using errcode = 'WF002';
    end if;
    if exists (select 1 from workflow.runs r where r.flow_slug = add_step.flow_slug) then
        raise exception 'flow % already has runs; its shape can no longer change', add_step.flow_slug
            using errcode = 'WF008', hint = 'Create a new flow (for example with a version suffix) instead.';
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

    if exists (select 1 from workflow.steps s where s.flow_slug = add_step.flow_slug and s.step_slug = v_step ->> 'slug') then
        raise exception 'flow % already has a step %', add_step.flow_slug, v_step ->> 'slug' using errcode = 'WF004';
    end if;
    select array_agg(d order by d) into v_missing
    from jsonb_array_elements_text(v_step -> 'depends_on') as d
    where not exists (select 1 from workflow.steps s where s.flow_slug = add_step.flow_slug and s.step_slug = d);
    if v_missing is not null then
        raise exception 'step % depends on unknown step(s): %', v_step ->> 'slug', array_to_string(v_missing, ', ')
            using errcode = 'WF003', hint = 'Add dependencies before the steps that depend on them.';
    end if;

    -- PHASE 1: store the step and its edges
    select coalesce(max(s.step_index) + 1, 0) into v_index from workflow.steps s where s.flow_slug = add_step.flow_slug;
    insert into workflow.steps (
        flow_slug, step_slug, step_index, step_type, map_over, execution, queue_name, max_attempts,
        base_delay_seconds, timeout_seconds, start_delay_seconds, required_resources, deps_count
    ) values (
        add_step.flow_slug, v_step ->> 'slug', v_index, v_step ->> 'type', v_step ->> 'map_over',
        v_step ->> 'execution', v_step ->> 'queue', (v_step ->> 'max_attempts')::integer,
        (v_step ->> 'base_delay')::integer, (v_step ->> 'timeout')::integer, (v_step ->> 'start_delay')::integer,
        array(select jsonb_array_elements_text(v_step -> 'resources')), jsonb_array_length(v_step -> 'depends_on')
    );
    insert into workflow.deps (flow_slug, step_slug, dep_slug)
    select add_step.flow_slug, v_step ->> 'slug', d from jsonb_array_elements_text(v_step -> 'depends_on') as d;

    -- PHASE 2: make sure the queue exists (pgmq.create is idempotent but runs DDL; skip it when known)
    if not exists (select 1 from pgmq.meta m where m.queue_name = v_step ->> 'queue') then
        perform pgmq.create(v_step ->> 'queue');
    end if;
    return v_step;
end;
$$;
