-- store_task_graph: validate a goal's flattened task graph and store it for preview and approval.
--
-- Called by Orchestrator.decompose_goal (after it flattened the decomposer's hierarchy) and psql
-- users. tasks: [{"id", "description", "depends_on": [...], "depth", ...}], one entry per task
-- that runs; ids become step slugs of the flow built later, so they follow the step name rules.
-- Other keys of a task are kept as given. Missing description is '', missing depends_on [],
-- missing depth 0; depends_on is stored de-duplicated and sorted. hierarchy: the tree as
-- decomposed, for display (default: the tasks as a flat list of nodes). Nothing runs and nothing
-- is approved: approve_task_graph does that.
-- Locks nothing existing (inserts one task_graphs row). Returns the new graph_id.
-- Errors: WF010 blank goal, tasks not an array, a task not an object, non-string id or
-- description, malformed depends_on, depth not a non-negative integer, hierarchy not an array;
-- WF016 no tasks; WF001 an id that is not a valid step name; WF004 duplicate id; WF006 a task
-- depending on itself; WF003 unknown dependency; WF005 cycle. On error nothing is stored.
-- Not idempotent: each call stores a new graph.
create or replace function workflow.store_task_graph(
    goal text,
    tasks jsonb,
    hierarchy jsonb default null,
    decomposed_at timestamptz default clock_timestamp()
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_task jsonb;
    v_tasks jsonb := '[]'::jsonb;
    v_id text;
    v_deps text[];
    v_placed text[] := '{}'::text[];
    v_ready text[];
    v_bad text;
    v_graph_id uuid;
begin
    -- GUARD: shape of the arguments
    if store_task_graph.goal is null or btrim(store_task_graph.goal) = '' then
        raise exception 'a task graph needs a non-blank goal' using errcode = 'WF010';
    end if;
    if jsonb_typeof(store_task_graph.tasks) is distinct from 'array' then
        raise exception 'tasks must be a JSON array of task objects, got %', coalesce(jsonb_typeof(store_task_graph.tasks), 'null')
            using errcode = 'WF010';
    end if;
    if jsonb_array_length(store_task_graph.tasks) = 0 then
        raise exception 'the task graph for goal % has no tasks', quote_literal(store_task_graph.goal)
            using errcode = 'WF016', hint = 'A decomposer must return at least one task.';
    end if;
    if store_task_graph.hierarchy is not null and jsonb_typeof(store_task_graph.hierarchy) <> 'array' then
        raise exception 'hierarchy must be a JSON array of nodes' using errcode = 'WF010';
    end if;

    -- PHASE 1: check and normalise each task
    for v_task in select jsonb_array_elements(store_task_graph.tasks) loop
        if jsonb_typeof(v_task) <> 'object' then
            raise exception 'each task must be a JSON object, got %', v_task using errcode = 'WF010';
        end if;
        if jsonb_typeof(v_task -> 'id') is distinct from 'string' then
            raise exception 'task % has no string "id"', v_task using errcode = 'WF010';
        end if;
        v_id := v_task ->> 'id';
        perform workflow._validate_name('step', v_id);
        if coalesce(jsonb_typeof(v_task -> 'description'), 'null') not in ('null', 'string') then
            raise exception 'task %: description must be a string', v_id using errcode = 'WF010';
        end if;
        if coalesce(jsonb_typeof(v_task -> 'depends_on'), 'null') not in ('null', 'array')
            or exists (
                select 1 from jsonb_array_elements(coalesce(v_task -> 'depends_on', '[]')) as d
                where jsonb_typeof(d) <> 'string'
            ) then
            raise exception 'task %: depends_on must be an array of task ids', v_id using errcode = 'WF010';
        end if;
        -- A CASE, not OR: the cast must never be tried on a depth that is not a number.
        -- (Parenthesised: PL/pgSQL ends an IF condition at the first THEN outside parentheses.)
        if (case coalesce(jsonb_typeof(v_task -> 'depth'), 'null')
                when 'null' then false
                when 'number' then (v_task ->> 'depth')::numeric <> trunc((v_task ->> 'depth')::numeric)
                    or (v_task ->> 'depth')::numeric not between 0 and 1000
                else true
            end) then
            raise exception 'task %: depth must be an integer between 0 and 1000, got %', v_id, v_task -> 'depth'
                using errcode = 'WF010';
        end if;
        select coalesce(array_agg(distinct d order by d), '{}') into v_deps
        from jsonb_array_elements_text(coalesce(v_task -> 'depends_on', '[]')) as d;
        if v_id = any(v_deps) then
            raise exception 'task % depends on itself', v_id using errcode = 'WF006';
        end if;
        v_tasks := v_tasks || jsonb_build_array(v_task || jsonb_build_object(
            'description', coalesce(v_task ->> 'description', ''),
            'depends_on', to_jsonb(v_deps),
            'depth', coalesce((v_task ->> 'depth')::integer, 0)
        ));
    end loop;

    -- PHASE 2: the graph: unique ids, known dependencies, no cycle
    select t ->> 'id' into v_bad from jsonb_array_elements(v_tasks) as t
    group by t ->> 'id' having count(*) > 1 order by 1 limit 1;
    if v_bad is not null then
        raise exception 'the task graph lists task % more than once', v_bad using errcode = 'WF004';
    end if;
    select format('task %s depends on unknown task %s', t ->> 'id', d) into v_bad
    from jsonb_array_elements(v_tasks) as t, jsonb_array_elements_text(t -> 'depends_on') as d
    where not exists (select 1 from jsonb_array_elements(v_tasks) as o where o ->> 'id' = d)
    order by t ->> 'id', d limit 1;
    if v_bad is not null then
        raise exception '%', v_bad using errcode = 'WF003';
    end if;
    -- Kahn's algorithm, one layer per pass; tasks never placed sit on (or behind) a cycle.
    loop
        select array_agg(t ->> 'id') into v_ready
        from jsonb_array_elements(v_tasks) as t
        where not (t ->> 'id') = any(v_placed)
          and not exists (
              select 1 from jsonb_array_elements_text(t -> 'depends_on') as d where not d = any(v_placed)
          );
        exit when v_ready is null;
        v_placed := v_placed || v_ready;
    end loop;
    if cardinality(v_placed) < jsonb_array_length(v_tasks) then
        raise exception 'the task graph has a dependency cycle among tasks: %', (
            select string_agg(t ->> 'id', ', ' order by t ->> 'id') from jsonb_array_elements(v_tasks) as t
            where not (t ->> 'id') = any(v_placed)
        ) using errcode = 'WF005';
    end if;

    -- PHASE 3: store it
    insert into workflow.task_graphs (graph_id, goal, tasks, hierarchy, decomposed_at)
    values (
        gen_random_uuid(),
        store_task_graph.goal,
        v_tasks,
        coalesce(store_task_graph.hierarchy, (
            select jsonb_agg(jsonb_build_object('id', t ->> 'id', 'description', t ->> 'description', 'subtasks', '[]'::jsonb)
                order by i)
            from jsonb_array_elements(v_tasks) with ordinality as x (t, i)
        )),
        coalesce(store_task_graph.decomposed_at, clock_timestamp())
    )
    returning graph_id into v_graph_id;
    return v_graph_id;
end;
$$;
