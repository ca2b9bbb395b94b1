-- _normalize_step: validate one step description and fill in every default.
--
-- Applies the step rules of definition_rules() (option names, types, executions, defaults,
-- default queues, minimums), used by add_step and register_flow, so a flow built step by step
-- and the same flow registered as JSON compare equal. Input keys: slug, depends_on, type,
-- map_over, execution, queue, max_attempts, base_delay, timeout, start_delay, resources,
-- priority, and the control-flow options wait_for, event_key, wait_timeout, sleep, condition,
-- run_if_skipped (docs/control-flow.md). An
-- omitted execution is local (on the reserved queue "local"); a distributed step that names no
-- queue goes on queue "default".
-- Returns an object with all of them; depends_on and resources sorted, so two descriptions of
-- the same step are equal as jsonb. priority (an integer in priority_range) is returned only when
-- given: it has no default, and it is not part of a flow's shape (flow_shape_hash drops it).
-- The control-flow options are returned only on steps that use them, so a flow without them
-- keeps the shape hash it had before they existed. A wait step (type "wait", implied by
-- wait_for) runs no handler: it gets event_key (default run_id) and is distributed on queue
-- "default" (it never has a task, so it needs no owner); execution, queue, resources, map_over
-- and sleep are refused on it. sleep: whole seconds (>= 0) or a path, input.<field>... or
-- <dependency>.<field>..., read when the step starts (seconds, or a timestamp to sleep until).
-- condition: checked by _check_condition (WF036 malformed, WF037 a path into a step that is not
-- a dependency); run_if_skipped: a boolean, kept only when true.
-- Dependencies are not resolved here (add_step does that).
-- Locks nothing. Errors: WF001 bad name, WF010 bad option, WF006 self dependency, WF036 / WF037
-- a bad condition.
create or replace function workflow._normalize_step(step jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
    -- definition_rules() takes no arguments and is immutable: planned once, it is a constant.
    v_rules jsonb := workflow.definition_rules();
    v_defaults jsonb := v_rules -> 'step_defaults';
    v_unknown text[];
    v_slug text;
    v_deps text[];
    v_type text;
    v_map_over text;
    v_execution text;
    v_queue text;
    v_resources text[];
    v_int jsonb;
    v_key text;
    v_min integer;
    v_ints jsonb := '{}'::jsonb;
    v_control jsonb := '{}'::jsonb;
    v_sleep jsonb;
begin
    -- GUARD: shape
    if jsonb_typeof(_normalize_step.step) is distinct from 'object' then
        raise exception 'a step must be a JSON object, got %', coalesce(jsonb_typeof(_normalize_step.step), 'null')
            using errcode = 'WF010';
    end if;
    select array_agg(k order by k) into v_unknown
    from jsonb_object_keys(_normalize_step.step) as k
    where not v_rules -> 'step_options' ? k;
    if v_unknown is not null then
        raise exception 'unknown step option(s): %', array_to_string(v_unknown, ', ')
            using errcode = 'WF010',
                hint = 'Known options: ' || (
                    select string_agg(o, ', ') from jsonb_array_elements_text(v_rules -> 'step_options') as o
                ) || '.';
    end if;

    -- PHASE 1: names
    if jsonb_typeof(_normalize_step.step -> 'slug') is distinct from 'string' then
        raise exception 'step slug must be a string' using errcode = 'WF001';
    end if;
    v_slug := _normalize_step.step ->> 'slug';
    perform workflow._validate_name('step', v_slug);

    if jsonb_typeof(coalesce(_normalize_step.step -> 'depends_on', v_defaults -> 'depends_on')) <> 'array' then
        raise exception 'depends_on of step % must be an array of step names', v_slug using errcode = 'WF010';
    end if;
    if exists (
        select 1 from jsonb_array_elements(coalesce(_normalize_step.step -> 'depends_on', v_defaults -> 'depends_on')) as d
        where jsonb_typeof(d) <> 'string'
    ) then
        raise exception 'depends_on of step % must contain only strings', v_slug using errcode = 'WF010';
    end if;
    select coalesce(array_agg(distinct d order by d), '{}') into v_deps
    from jsonb_array_elements_text(coalesce(_normalize_step.step -> 'depends_on', v_defaults -> 'depends_on')) as d;
    perform workflow._validate_name('step', d) from unnest(v_deps) as d;
    if v_slug = any(v_deps) then
        raise exception 'step % depends on itself', v_slug using errcode = 'WF006';
    end if;

    -- PHASE 2: kind and placement
    v_type := coalesce(
        _normalize_step.step ->> 'type',
        case when _normalize_step.step ? 'wait_for' then 'wait' end,
        v_defaults ->> 'type'
    );
    if not v_rules -> 'step_types' ? v_type then
        raise exception 'step %: type must be single, map or wait, got %', v_slug, v_type using errcode = 'WF010';
    end if;
    -- PHASE 2a: a wait step (docs/control-flow.md): no handler, so no placement options
    if v_type = 'wait' then
        if jsonb_typeof(_normalize_step.step -> 'wait_for') is distinct from 'string'
            or _normalize_step.step ->> 'wait_for' !~ (v_rules #>> '{control,event_name}') then
            raise exception 'wait step %: wait_for must be an event name matching %, got %',
                v_slug, v_rules #>> '{control,event_name}', coalesce(_normalize_step.step -> 'wait_for', 'null')
                using errcode = 'WF010', hint = 'Name the event the step waits for: "wait_for": "approval".';
        end if;
        -- get_flow's form of a wait step (distributed, on "default", no resources) is accepted.
        select array_agg(x.key order by x.key) into v_unknown
        from jsonb_each(_normalize_step.step) as x
        where (x.key = 'execution' and x.value <> '"distributed"')
           or (x.key = 'queue' and x.value <> '"default"')
           or (x.key = 'resources' and x.value <> '[]')
           or (x.key = 'map_over' and x.value <> 'null')
           or x.key = 'sleep';
        if v_unknown is not null then
            raise exception 'wait step % cannot take %', v_slug, array_to_string(v_unknown, ', ')
                using errcode = 'WF010', hint = 'A wait step runs no handler; put these options on the step after it.';
        end if;
        if coalesce(jsonb_typeof(_normalize_step.step -> 'event_key'), 'string') <> 'string'
            or coalesce(_normalize_step.step ->> 'event_key', 'run_id') !~ (v_rules #>> '{control,event_key}') then
            raise exception 'wait step %: event_key must be run_id or input.<field>[.<field>...], got %',
                v_slug, _normalize_step.step -> 'event_key'
                using errcode = 'WF010', hint = 'The key scopes the event to one run: run_id, or a field of the run input.';
        end if;
        v_control := jsonb_build_object(
            'wait_for', _normalize_step.step ->> 'wait_for',
            'event_key', coalesce(_normalize_step.step ->> 'event_key', 'run_id')
        );
        if _normalize_step.step ? 'wait_timeout' then
            v_int := _normalize_step.step -> 'wait_timeout';
            if jsonb_typeof(v_int) <> 'number'
                or (v_int #>> '{}')::numeric <> trunc((v_int #>> '{}')::numeric)
                or (v_int #>> '{}')::numeric not between 1 and (v_rules ->> 'integer_max')::numeric then
                raise exception 'wait step %: wait_timeout must be an integer >= 1 (seconds), got %', v_slug, v_int
                    using errcode = 'WF010';
            end if;
            v_control := v_control || jsonb_build_object('wait_timeout', (v_int #>> '{}')::integer);
        end if;
    else
        select array_agg(k order by k) into v_unknown
        from jsonb_object_keys(_normalize_step.step) as k
        where k in ('wait_for', 'event_key', 'wait_timeout');
        if v_unknown is not null then
            raise exception 'step % is a % step, so it cannot take %', v_slug, v_type, array_to_string(v_unknown, ', ')
                using errcode = 'WF010', hint = 'Only a wait step (type wait, or wait_for given) waits for an event.';
        end if;
    end if;
    -- PHASE 2b: sleep (seconds, or a path read when the step starts)
    if _normalize_step.step ? 'sleep' then
        v_sleep := _normalize_step.step -> 'sleep';
        if not (
            (jsonb_typeof(v_sleep) = 'number'
                and (v_sleep #>> '{}')::numeric = trunc((v_sleep #>> '{}')::numeric)
                and (v_sleep #>> '{}')::numeric between 0 and (v_rules ->> 'integer_max')::numeric)
            or (jsonb_typeof(v_sleep) = 'string' and (v_sleep #>> '{}') ~ (v_rules #>> '{control,path}')
                and position('.' in v_sleep #>> '{}') > 0)
        ) then
            raise exception 'step %: sleep must be whole seconds (>= 0) or a path input.<field> / <dependency>.<field>, got %',
                v_slug, v_sleep
                using errcode = 'WF010', hint = 'Examples: "sleep": 30, "sleep": "input.remind_at", "sleep": "fetch.retry_after".';
        end if;
        if jsonb_typeof(v_sleep) = 'string' and split_part(v_sleep #>> '{}', '.', 1) <> 'input'
            and not split_part(v_sleep #>> '{}', '.', 1) = any(v_deps) then
            raise exception 'step %: sleep path % starts with %, which is neither input nor one of its dependencies',
                v_slug, v_sleep #>> '{}', split_part(v_sleep #>> '{}', '.', 1)
                using errcode = 'WF010';
        end if;
        v_control := v_control || jsonb_build_object(
            'sleep', case when jsonb_typeof(v_sleep) = 'number' then to_jsonb((v_sleep #>> '{}')::integer) else v_sleep end
        );
    end if;
    v_map_over := _normalize_step.step ->> 'map_over';
    if v_type = 'single' and v_map_over is not null then
        raise exception 'step %: map_over is only valid on a map step', v_slug using errcode = 'WF010';
    end if;
    if v_type = 'map' then
        if v_map_over is null and cardinality(v_deps) = 1 then
            v_map_over := v_deps[1];
        elsif v_map_over is null and cardinality(v_deps) > 1 then
            raise exception 'map step % has several dependencies: say which one it maps over with map_over', v_slug
                using errcode = 'WF010';
        elsif v_map_over is not null and not v_map_over = any(v_deps) then
            raise exception 'map step % maps over %, which is not one of its dependencies', v_slug, v_map_over
                using errcode = 'WF010';
        end if;
    end if;

    -- A wait step never has a task, so no process needs to own it: distributed, on "default".
    v_execution := coalesce(
        _normalize_step.step ->> 'execution',
        case when v_type = 'wait' then 'distributed' end,
        v_defaults ->> 'execution'
    );
    if not v_rules -> 'executions' ? v_execution then
        raise exception 'step %: execution must be local or distributed, got %', v_slug, v_execution
            using errcode = 'WF010';
    end if;
    -- Local steps all live on the reserved queue "local" and are claimed by the process that
    -- executes the run (claim_tasks with run_id), so a queue name on them has no meaning.
    v_queue := coalesce(_normalize_step.step ->> 'queue', v_rules -> 'default_queues' ->> v_execution);
    perform workflow._validate_name('queue', v_queue);
    if v_execution = 'local' and v_queue <> 'local' then
        raise exception 'step % is local, so it cannot name queue %', v_slug, v_queue
            using errcode = 'WF010', hint = 'Local steps run in the executing process; drop the queue option or make the step distributed.';
    end if;
    if v_execution = 'distributed' and v_queue = 'local' then
        raise exception 'queue name "local" is reserved for local steps' using errcode = 'WF010';
    end if;

    if jsonb_typeof(coalesce(_normalize_step.step -> 'resources', v_defaults -> 'resources')) <> 'array' or exists (
        select 1 from jsonb_array_elements(coalesce(_normalize_step.step -> 'resources', v_defaults -> 'resources')) as r
        where jsonb_typeof(r) <> 'string' or r #>> '{}' !~ (v_rules #>> '{names,resource,pattern}')
    ) then
        raise exception 'step %: resources must be an array of resource names', v_slug using errcode = 'WF010';
    end if;
    select coalesce(array_agg(distinct r order by r), '{}') into v_resources
    from jsonb_array_elements_text(coalesce(_normalize_step.step -> 'resources', v_defaults -> 'resources')) as r;

    -- PHASE 2c: condition and run_if_skipped (docs/control-flow.md, "Conditions")
    if _normalize_step.step ? 'condition' then
        perform workflow._check_condition(_normalize_step.step -> 'condition', v_slug, v_deps);
        v_control := v_control || jsonb_build_object('condition', _normalize_step.step -> 'condition');
    end if;
    if _normalize_step.step ? 'run_if_skipped' then
        if jsonb_typeof(_normalize_step.step -> 'run_if_skipped') is distinct from 'boolean' then
            raise exception 'step %: run_if_skipped must be true or false, got %', v_slug, _normalize_step.step -> 'run_if_skipped'
                using errcode = 'WF010';
        end if;
        if (_normalize_step.step -> 'run_if_skipped')::boolean then
            v_control := v_control || '{"run_if_skipped": true}'::jsonb;
        end if;
    end if;

    -- PHASE 3: numbers (name, default, minimum)
    for v_key, v_int, v_min in
        select x.key, coalesce(_normalize_step.step -> x.key, v_defaults -> x.key), (x.value #>> '{}')::integer
        from jsonb_each(v_rules -> 'step_minimums') as x
        order by x.key
    loop
        if jsonb_typeof(v_int) <> 'number'
            or (v_int #>> '{}')::numeric <> trunc((v_int #>> '{}')::numeric)
            or (v_int #>> '{}')::numeric not between v_min and (v_rules ->> 'integer_max')::numeric then
            raise exception 'step %: % must be an integer >= %, got %', v_slug, v_key, v_min, v_int
                using errcode = 'WF010';
        end if;
        v_ints := v_ints || jsonb_build_object(v_key, (v_int #>> '{}')::integer);
    end loop;

    if _normalize_step.step ? 'priority' then
        v_int := _normalize_step.step -> 'priority';
        if jsonb_typeof(v_int) <> 'number'
            or (v_int #>> '{}')::numeric <> trunc((v_int #>> '{}')::numeric)
            or (v_int #>> '{}')::numeric not between (v_rules #>> '{priority_range,0}')::numeric
                and (v_rules #>> '{priority_range,1}')::numeric then
            raise exception 'step %: priority must be an integer between -1000 and 1000, got %', v_slug, v_int
                using errcode = 'WF010';
        end if;
        v_ints := v_ints || jsonb_build_object('priority', (v_int #>> '{}')::integer);
    end if;

    return jsonb_build_object(
        'slug', v_slug,
        'depends_on', to_jsonb(v_deps),
        'type', v_type,
        'map_over', v_map_over,
        'execution', v_execution,
        'queue', v_queue,
        'resources', to_jsonb(v_resources)
    ) || v_ints || v_control;
end;
$$;
