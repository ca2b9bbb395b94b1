-- start_flow: create a run of a flow and enqueue the tasks of its root steps.
--
-- Called by psql users and clients (execute, the CLI). input must be a JSON object, or an array
-- when the flow has a root map step (that step maps over the input). A caller-supplied run_id
-- makes the call idempotent: repeating it returns the same run without starting anything new.
-- timeout_seconds sets the run's deadline (default: the flow's timeout; none if both are null),
-- after which enforce_deadlines cancels it.
-- Locks: inserts the runs row (a concurrent start with the same run_id waits on the key) and the
-- flows row FOR KEY SHARE through the foreign key, so add_step cannot change the flow meanwhile.
-- Invariants: remaining_steps = number of steps; each step_state's remaining_deps = its number
-- of dependencies; root steps start in this transaction.
-- Errors: WF002 unknown flow, WF016 flow without steps, WF009 input of the wrong JSON type,
-- WF012 run_id already used by another flow, WF010 timeout below 1 s. On error nothing is created.
create or replace function workflow.start_flow(
    flow_slug text,
    input jsonb default '{}',
    run_id uuid default null,
    timeout_seconds integer default null,
    now timestamptz default clock_timestamp()
)
returns uuid
language plpgsql
set search_path = ''
-- Generic plans: these statements take arrays, so the plan cache kept re-planning them (custom
-- plans), which measured ~1 ms per statement against ~0.1-0.2 ms to execute.
set plan_cache_mode = force_generic_plan
-- Joins run in the order written, driven by the (small) input arrays: a generic plan otherwise
-- may start from a large table whose statistics lag behind (measured: 5 ms instead of 0.3 ms).
set join_collapse_limit = 1
as $$
declare
    v_run_id uuid := coalesce(start_flow.run_id, gen_random_uuid());
    v_steps integer;
    v_root_map boolean;
    v_timeout integer;
    v_existing text;
begin
    -- GUARD: the flow exists and has steps; the input has the JSON type the flow needs
    select f.timeout_seconds into v_timeout from workflow.flows f where f.flow_slug = start_flow.flow_slug;
    if not found then
        raise exception 'flow % does not exist', start_flow.flow_slug using errcode = 'WF002';
    end if;
    select count(*), coalesce(bool_or(s.step_type = 'map' and s.deps_count = 0), false)
    into v_steps, v_root_map
    from workflow.steps s where s.flow_slug = start_flow.flow_slug;
    if start_flow.timeout_seconds is not null and start_flow.timeout_seconds < 1 then
        raise exception 'run timeout must be at least 1 second, got %', start_flow.timeout_seconds using errcode = 'WF010';
    end if;
    if v_steps = 0 then
        raise exception 'flow % has no steps', start_flow.flow_slug using errcode = 'WF016';
    end if;
    if v_root_map and jsonb_typeof(start_flow.input) is distinct from 'array' then
        raise exception 'flow % maps over its input, so the input must be a JSON array, got %',
            start_flow.flow_slug, coalesce(jsonb_typeof(start_flow.input), 'null')
            using errcode = 'WF009';
    elsif not v_root_map and jsonb_typeof(start_flow.input) is distinct from 'object' then
        raise exception 'run input must be a JSON object, got %', coalesce(jsonb_typeof(start_flow.input), 'null')
            using errcode = 'WF009', hint = 'Wrap the value in an object, e.g. {"value": ...}.';
    end if;

    -- PHASE 1: the run row (idempotent on a caller-supplied run_id)
    insert into workflow.runs (run_id, flow_slug, remaining_steps, input, started_at, deadline_at)
    values (v_run_id, start_flow.flow_slug, v_steps, start_flow.input, start_flow.now,
        start_flow.now + make_interval(secs => coalesce(start_flow.timeout_seconds, v_timeout)))
    on conflict on constraint runs_pkey do nothing;
    if not found then
        select r.flow_slug into v_existing from workflow.runs r where r.run_id = v_run_id;
        if v_existing is distinct from start_flow.flow_slug then
            raise exception 'run % already exists for flow %', v_run_id, v_existing using errcode = 'WF012';
        end if;
        return v_run_id;
    end if;

    -- PHASE 2: one state row per step, counting its dependencies
    insert into workflow.step_states (run_id, step_slug, flow_slug, remaining_deps)
    select v_run_id, s.step_slug, s.flow_slug, s.deps_count
    from workflow.steps s where s.flow_slug = start_flow.flow_slug;

    perform workflow._emit_events(array[v_run_id], array[null::text], array['run_started'], start_flow.now);

    -- PHASE 3: start the roots
    perform workflow._start_steps(
        array(select v_run_id from workflow.steps s where s.flow_slug = start_flow.flow_slug and s.deps_count = 0),
        array(select s.step_slug from workflow.steps s where s.flow_slug = start_flow.flow_slug and s.deps_count = 0 order by s.step_index),
        start_flow.now
    );
    return v_run_id;
end;
$$;
