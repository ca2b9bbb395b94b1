-- register_flow_version: register a flow's shape, idempotently, and say which version it is.
--
-- definition: {"slug": "...", "timeout": seconds|null, "steps": [{"slug": ..., "depends_on": [...],
-- and the options of add_step}]}; steps may come in any order. Called by register_flow (which
-- returns the slug only) and by workers, which learn here the version and shape hash of each
-- definition they serve (the hash is what their handlers name; see _worker_handles).
-- A known shape (its flow_shape_hash is one of the slug's versions) is a no-op: no row written
-- (a changed step priority aside), no lock taken, and the version it already is is returned
-- with created = false, current or not, retired or not (so old workers re-registering during a
-- rolling deploy never move the current version back). A new shape becomes a new version,
-- numbered one above the slug's highest, and the current one: the next start without a version
-- runs on it; runs of other versions finish on theirs.
-- Step priorities ("priority" on a step) are not part of the shape: they are stored on every
-- registration, a known shape included (_declare_step_priorities; the one write a known shape
-- may make).
-- Locks: inserts the flows row (a concurrent registration of the same new slug waits on it); a
-- new shape then locks the flows row FOR NO KEY UPDATE (starts, which hold it FOR KEY SHARE, do
-- not wait), so two registrations of different shapes are numbered one after the other and the
-- later one is current. A version made by the 0008 upgrade gets its hash filled in here once.
-- Errors: WF010 malformed definition, WF001 bad name, WF004 duplicate step, WF003 unknown
-- dependency, WF005 cycle, WF006 self dependency, WF016 no steps. All or nothing: on error no
-- part of the flow is stored. Safe to repeat.
create or replace function workflow.register_flow_version(definition jsonb)
returns table (flow_slug text, version integer, shape_hash text, created boolean)
language plpgsql
set search_path = ''
as $$
declare
    v_slug text;
    v_timeout integer;
    v_steps jsonb := '[]'::jsonb;
    v_step jsonb;
    v_ordered jsonb := '[]'::jsonb;
    v_placed text[] := '{}'::text[];
    v_progress boolean;
    v_dup text;
    v_missing text;
    v_hash text;
    v_known record;
    v_version_id bigint;
    v_version integer;
    v_queue text;
begin
    -- GUARD: shape of the description
    if jsonb_typeof(register_flow_version.definition) is distinct from 'object' then
        raise exception 'a flow definition must be a JSON object' using errcode = 'WF010';
    end if;
    if exists (select 1 from jsonb_object_keys(register_flow_version.definition) as k where k not in ('slug', 'timeout', 'steps')) then
        raise exception 'unknown flow key(s) in definition; known keys: slug, timeout, steps' using errcode = 'WF010';
    end if;
    if jsonb_typeof(register_flow_version.definition -> 'slug') is distinct from 'string' then
        raise exception 'flow definition needs a string "slug"' using errcode = 'WF001';
    end if;
    v_slug := register_flow_version.definition ->> 'slug';
    perform workflow._validate_name('flow', v_slug);
    if coalesce(jsonb_typeof(register_flow_version.definition -> 'timeout'), 'null') not in ('null', 'number')
        or (register_flow_version.definition ->> 'timeout')::numeric not between 1 and 2147483647
        or (register_flow_version.definition ->> 'timeout')::numeric <> trunc((register_flow_version.definition ->> 'timeout')::numeric) then
        raise exception 'flow timeout must be a whole number of seconds from 1 to 2147483647, or null; got %',
            register_flow_version.definition -> 'timeout'
            using errcode = 'WF010';
    end if;
    v_timeout := (register_flow_version.definition ->> 'timeout')::integer;
    if jsonb_typeof(register_flow_version.definition -> 'steps') is distinct from 'array'
        or jsonb_array_length(register_flow_version.definition -> 'steps') = 0 then
        raise exception 'flow % needs a non-empty "steps" array', v_slug using errcode = 'WF016';
    end if;

    -- PHASE 0: a known shape is a no-op (one index probe). Versions made by the 0008 upgrade get
    -- their hash computed once, by the first registration that looks.
    v_hash := workflow.flow_shape_hash(register_flow_version.definition);
    if exists (select 1 from workflow.flow_versions v where v.flow_slug = v_slug and v.shape_hash is null) then
        update workflow.flow_versions v
        set shape_hash = workflow.flow_shape_hash(workflow.get_flow(v.flow_slug, v.version))
        where v.flow_slug = v_slug and v.shape_hash is null;
    end if;
    select v.version into v_known
    from workflow.flow_versions v
    where v.flow_slug = v_slug and v.shape_hash = v_hash
    order by v.version desc
    limit 1;
    if found then
        perform workflow._declare_step_priorities(v_slug, register_flow_version.definition);
        return query select v_slug, v_known.version, v_hash, false;
        return;
    end if;

    -- PHASE 1: normalise every step, then check names are unique and dependencies known
    for v_step in select jsonb_array_elements(register_flow_version.definition -> 'steps') loop
        v_steps := v_steps || jsonb_build_array(workflow._normalize_step(v_step));
    end loop;
    select s ->> 'slug' into v_dup from jsonb_array_elements(v_steps) as s
    group by s ->> 'slug' having count(*) > 1 order by 1 limit 1;
    if v_dup is not null then
        raise exception 'flow % lists step % more than once', v_slug, v_dup using errcode = 'WF004';
    end if;
    select d into v_missing
    from jsonb_array_elements(v_steps) as s, jsonb_array_elements_text(s -> 'depends_on') as d
    where not exists (select 1 from jsonb_array_elements(v_steps) as o where o ->> 'slug' = d)
    order by 1 limit 1;
    if v_missing is not null then
        raise exception 'flow %: unknown dependency %', v_slug, v_missing using errcode = 'WF003';
    end if;

    -- PHASE 2: topological order (Kahn); steps left over sit on a cycle
    loop
        v_progress := false;
        for v_step in
            select s from jsonb_array_elements(v_steps) with ordinality as x (s, i)
            where not (s ->> 'slug') = any(v_placed)
              and not exists (
                  select 1 from jsonb_array_elements_text(s -> 'depends_on') as d where not d = any(v_placed)
              )
            order by i
        loop
            v_ordered := v_ordered || jsonb_build_array(v_step);
            v_placed := v_placed || (v_step ->> 'slug');
            v_progress := true;
        end loop;
        exit when not v_progress;
    end loop;
    if cardinality(v_placed) < jsonb_array_length(v_steps) then
        raise exception 'flow % has a dependency cycle among steps: %', v_slug, (
            select string_agg(s ->> 'slug', ', ' order by s ->> 'slug') from jsonb_array_elements(v_steps) as s
            where not (s ->> 'slug') = any(v_placed)
        ) using errcode = 'WF005';
    end if;

    -- PHASE 3: claim the slug, then the right to number a version. A concurrent registration of
    -- the same new flow waits on the flows key until the first commits; one of another shape
    -- waits on the row lock. Either then looks again: the shape may have been stored meanwhile.
    insert into workflow.flows (flow_slug, timeout_seconds) values (v_slug, v_timeout)
    on conflict do nothing;
    perform 1 from workflow.flows f where f.flow_slug = v_slug for no key update;
    select v.version into v_known
    from workflow.flow_versions v
    where v.flow_slug = v_slug and v.shape_hash = v_hash
    order by v.version desc
    limit 1;
    if found then
        perform workflow._declare_step_priorities(v_slug, register_flow_version.definition);
        return query select v_slug, v_known.version, v_hash, false;
        return;
    end if;

    -- PHASE 4: the new version, its steps (in topological order) and edges, made current
    select coalesce(max(v.version), 0) + 1 into v_version from workflow.flow_versions v where v.flow_slug = v_slug;
    insert into workflow.flow_versions (flow_slug, version, shape_hash, timeout_seconds)
    values (v_slug, v_version, v_hash, v_timeout)
    returning workflow.flow_versions.version_id into v_version_id;
    insert into workflow.steps (
        version_id, flow_slug, step_slug, step_index, step_type, map_over, execution, queue_name, max_attempts,
        base_delay_seconds, timeout_seconds, start_delay_seconds, required_resources, deps_count, control
    )
    select v_version_id, v_slug, x.s ->> 'slug', (x.i - 1)::integer, x.s ->> 'type', x.s ->> 'map_over',
        x.s ->> 'execution', x.s ->> 'queue', (x.s ->> 'max_attempts')::integer,
        (x.s ->> 'base_delay')::integer, (x.s ->> 'timeout')::integer, (x.s ->> 'start_delay')::integer,
        array(select jsonb_array_elements_text(x.s -> 'resources')), jsonb_array_length(x.s -> 'depends_on'),
        workflow._step_control(x.s)
    from jsonb_array_elements(v_ordered) with ordinality as x (s, i);
    insert into workflow.deps (version_id, flow_slug, step_slug, dep_slug)
    select v_version_id, v_slug, s ->> 'slug', d
    from jsonb_array_elements(v_ordered) as s, jsonb_array_elements_text(s -> 'depends_on') as d;
    update workflow.flows f set current_version_id = v_version_id, timeout_seconds = v_timeout
    where f.flow_slug = v_slug;
    -- The queues (pgmq.create is idempotent but runs DDL; skip the known ones)
    for v_queue in
        select distinct s ->> 'queue' from jsonb_array_elements(v_ordered) as s
        where not exists (select 1 from pgmq.meta m where m.queue_name = s ->> 'queue')
        order by 1
    loop
        perform pgmq.create(v_queue);
        perform workflow._tune_queue(v_queue);
    end loop;
    perform workflow._declare_step_priorities(v_slug, register_flow_version.definition);
    return query select v_slug, v_version, v_hash, true;
end;
$$;
