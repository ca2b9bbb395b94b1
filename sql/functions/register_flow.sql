-- register_flow: create a whole flow from one JSON description, idempotently.
--
-- definition: {"slug": "...", "timeout": seconds|null, "steps": [{"slug": ..., "depends_on": [...],
-- and the options of add_step}]}; steps may come in any order. Called by clients registering
-- code-defined workflows on every start, so the same shape again is a cheap no-op, and a
-- different shape under an existing slug is an error rather than a silent redefinition.
-- Locks: inserts the flows row (a concurrent registration of the same slug waits on it), then
-- what add_step locks.
-- Errors: WF010 malformed definition, WF001 bad name, WF004 duplicate step, WF003 unknown
-- dependency, WF005 cycle, WF006 self dependency, WF007 shape differs from the stored flow,
-- WF016 no steps. All or nothing: on error no part of the flow is stored.
create or replace function workflow.register_flow(definition jsonb)
returns text
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
    v_stored jsonb;
begin
    -- GUARD: shape of the description
    if jsonb_typeof(register_flow.definition) is distinct from 'object' then
        raise exception 'a flow definition must be a JSON object' using errcode = 'WF010';
    end if;
    if exists (select 1 from jsonb_object_keys(register_flow.definition) as k where k not in ('slug', 'timeout', 'steps')) then
        raise exception 'unknown flow key(s) in definition; known keys: slug, timeout, steps' using errcode = 'WF010';
    end if;
    if jsonb_typeof(register_flow.definition -> 'slug') is distinct from 'string' then
        raise exception 'flow definition needs a string "slug"' using errcode = 'WF001';
    end if;
    v_slug := register_flow.definition ->> 'slug';
    perform workflow._validate_name('flow', v_slug);
    if coalesce(jsonb_typeof(register_flow.definition -> 'timeout'), 'null') not in ('null', 'number')
        or (register_flow.definition ->> 'timeout')::numeric not between 1 and 2147483647
        or (register_flow.definition ->> 'timeout')::numeric <> trunc((register_flow.definition ->> 'timeout')::numeric) then
        raise exception 'flow timeout must be a whole number of seconds from 1 to 2147483647, or null; got %',
            register_flow.definition -> 'timeout'
            using errcode = 'WF010';
    end if;
    v_timeout := (register_flow.definition ->> 'timeout')::integer;
    if jsonb_typeof(register_flow.definition -> 'steps') is distinct from 'array'
        or jsonb_array_length(register_flow.definition -> 'steps') = 0 then
        raise exception 'flow % needs a non-empty "steps" array', v_slug using errcode = 'WF016';
    end if;

    -- PHASE 1: normalise every step, then check names are unique and dependencies known
    for v_step in select jsonb_array_elements(register_flow.definition -> 'steps') loop
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

    -- PHASE 3: claim the slug. A concurrent registration of the same new flow waits here on the
    -- unique key until the first commits, then compares instead of failing. (The timeout was
    -- checked in the GUARD above.)
    insert into workflow.flows (flow_slug, timeout_seconds) values (v_slug, v_timeout)
    on conflict do nothing;
    if found then
        for v_step in select jsonb_array_elements(v_ordered) loop
            perform workflow.add_step(
                v_slug, v_step ->> 'slug', array(select jsonb_array_elements_text(v_step -> 'depends_on')),
                v_step ->> 'type', v_step ->> 'map_over', v_step ->> 'execution', v_step ->> 'queue',
                (v_step ->> 'max_attempts')::integer, (v_step ->> 'base_delay')::integer,
                (v_step ->> 'timeout')::integer, (v_step ->> 'start_delay')::integer,
                array(select jsonb_array_elements_text(v_step -> 'resources'))
            );
        end loop;
        return v_slug;
    end if;

    -- PHASE 4: the flow exists: it must have the same shape (step sets compared keyed by slug)
    v_stored := workflow.get_flow(v_slug);
    if (v_stored -> 'timeout') is distinct from coalesce(to_jsonb(v_timeout), 'null')
        or (select jsonb_object_agg(s ->> 'slug', s) from jsonb_array_elements(v_stored -> 'steps') as s)
        is distinct from (select jsonb_object_agg(s ->> 'slug', s) from jsonb_array_elements(v_steps) as s) then
        raise exception 'flow % is already registered with a different shape', v_slug
            using errcode = 'WF007',
                hint = 'Register the new shape under a new slug (for example with a version suffix).';
    end if;
    return v_slug;
end;
$$;
