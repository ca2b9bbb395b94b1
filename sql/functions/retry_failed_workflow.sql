-- retry_failed_workflow: start a new run of a failed run's flow with the same input.
--
-- Called by psql users, clients and the CLI. Returns the new run's id; the new run records
-- retry_of = the failed run. With skip_completed (the default) and not reset_all, every step that
-- completed in the failed run is carried over as completed with its output, so it does not run
-- again and its dependents start from that output: only the failed step, its descendants and any
-- step that had not finished run. reset_all (or skip_completed => false) runs everything again.
-- The failed run itself is not changed. The new run's deadline comes from its version's timeout.
-- Versions: by default the new run is pinned to the failed run's own version (retired or not: a
-- retry finishes work already begun). on_current => true runs it on the flow's current version
-- instead, and then carries over only the completed steps whose definition (get_flow's step
-- object: options and dependencies) is the same in both versions and whose dependencies are all
-- carried over too; each carried-over step is recorded as a step_reused event of the new run
-- (read_events shows which), and a notice lists them.
-- owner: the worker id of the process that will execute the new run's local steps (as start_flow).
-- Locks: the failed run's row FOR KEY SHARE (it cannot be deleted meanwhile); inserts the new run.
-- Errors: WF011 unknown run, WF013 the run has not failed, WF001 a malformed owner, WF019 no owner
-- while a local step would run again (one not carried over as completed).
-- Not idempotent: each call starts a run.
create or replace function workflow.retry_failed_workflow(
    run_id uuid,
    skip_completed boolean default true,
    reset_all boolean default false,
    now timestamptz default clock_timestamp(),
    owner text default null,
    on_current boolean default false
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_old record;
    v_new uuid := gen_random_uuid();
    v_skip boolean := coalesce(retry_failed_workflow.skip_completed, true) and not coalesce(retry_failed_workflow.reset_all, false);
    v_remaining integer;
    v_vid bigint;
    v_carry text[] := '{}'::text[];
    v_step record;
    v_old_steps jsonb;
    v_new_steps jsonb;
begin
    if retry_failed_workflow.owner is not null and retry_failed_workflow.owner !~ '^[A-Za-z0-9_.:@/-]{1,200}$' then
        raise exception 'invalid owner worker id %', quote_literal(retry_failed_workflow.owner)
            using errcode = 'WF001', hint = 'Use 1-200 characters among letters, digits and _ . : @ / -.';
    end if;
    select r.run_id, r.flow_slug, r.status, r.input, r.version_id, r.concurrency_key, r.priority into v_old
    from workflow.runs r where r.run_id = retry_failed_workflow.run_id
    for key share;
    if not found then
        raise exception 'run % does not exist', retry_failed_workflow.run_id using errcode = 'WF011';
    end if;
    if v_old.status <> 'failed' then
        raise exception 'run % is %, only a failed run can be retried', retry_failed_workflow.run_id, v_old.status
            using errcode = 'WF013';
    end if;
    -- The version the new run runs on: the old run's, or the current one (on_current).
    v_vid := v_old.version_id;
    if coalesce(retry_failed_workflow.on_current, false) then
        select f.current_version_id into v_vid from workflow.flows f where f.flow_slug = v_old.flow_slug;
    end if;
    -- A local step that runs again needs the process that executes it (one carried over as
    -- completed does not run).
    if retry_failed_workflow.owner is null and exists (
        select 1
        from workflow.steps s
        left join workflow.step_states os on os.run_id = v_old.run_id and os.step_slug = s.step_slug
        where s.version_id = v_vid and s.execution = 'local'
          and not (v_skip and coalesce(os.status = 'completed', false))
    ) then
        raise exception 'flow % has local steps and the retried run has no owner', v_old.flow_slug
            using errcode = 'WF019',
                hint = 'Local steps run in the process that executes the run: retry with the workflow (or step functions) so this process executes it, or mark the steps distributed.';
    end if;

    -- PHASE 1: the steps carried over, the new run (they do not count as remaining)
    if v_skip then
        if v_vid <> v_old.version_id then
            select jsonb_object_agg(x.step ->> 'slug', x.step) into v_old_steps
            from jsonb_array_elements(workflow.get_flow(v_old.flow_slug, (
                select v.version from workflow.flow_versions v where v.version_id = v_old.version_id)) -> 'steps') as x (step);
            select jsonb_object_agg(x.step ->> 'slug', x.step) into v_new_steps
            from jsonb_array_elements(workflow.get_flow(v_old.flow_slug, (
                select v.version from workflow.flow_versions v where v.version_id = v_vid)) -> 'steps') as x (step);
        end if;
        -- In step order (topological), so a step's dependencies are decided before it.
        for v_step in
            select s.step_slug, coalesce(os.status = 'completed', false) as completed,
                array(select d.dep_slug from workflow.deps d where d.version_id = s.version_id and d.step_slug = s.step_slug) as deps
            from workflow.steps s
            left join workflow.step_states os on os.run_id = v_old.run_id and os.step_slug = s.step_slug
            where s.version_id = v_vid
            order by s.step_index
        loop
            if v_step.completed and (v_vid = v_old.version_id or (
                (v_old_steps -> v_step.step_slug) = (v_new_steps -> v_step.step_slug) and v_step.deps <@ v_carry
            )) then
                v_carry := v_carry || v_step.step_slug;
            end if;
        end loop;
    end if;
    select count(*) filter (where not s.step_slug = any(v_carry)) into v_remaining
    from workflow.steps s where s.version_id = v_vid;

    -- The retry keeps the run's concurrency key and priority (flow control, 0009).
    insert into workflow.runs (run_id, flow_slug, version_id, remaining_steps, input, started_at, deadline_at, retry_of,
        owner_worker_id, concurrency_key, priority)
    select v_new, v_old.flow_slug, v_vid, v_remaining, v_old.input, retry_failed_workflow.now,
        retry_failed_workflow.now + make_interval(secs => v.timeout_seconds), v_old.run_id, retry_failed_workflow.owner,
        v_old.concurrency_key, v_old.priority
    from workflow.flow_versions v where v.version_id = v_vid;

    -- PHASE 2: step states: carried over (completed, with output) or waiting on the dependencies
    -- that were not carried over
    insert into workflow.step_states (run_id, step_slug, flow_slug, version_id, status, remaining_deps, remaining_tasks,
        initial_tasks, output, started_at, completed_at)
    select v_new, s.step_slug, s.flow_slug, s.version_id,
        case when carried then 'completed' else 'created' end,
        case when carried then 0 else (
            select count(*)::integer from workflow.deps d
            where d.version_id = s.version_id and d.step_slug = s.step_slug
              and not d.dep_slug = any(v_carry)
        ) end,
        case when carried then 0 end,
        case when carried then os.initial_tasks end,
        case when carried then os.output end,
        case when carried then retry_failed_workflow.now end,
        case when carried then retry_failed_workflow.now end
    from workflow.steps s
    left join workflow.step_states os on os.run_id = v_old.run_id and os.step_slug = s.step_slug
    cross join lateral (select s.step_slug = any(v_carry) as carried) as c
    where s.version_id = v_vid;

    perform workflow._emit_events(array[v_new], array[null::text], array['run_started'], retry_failed_workflow.now);
    if v_vid <> v_old.version_id and cardinality(v_carry) > 0 then
        perform workflow._emit_events(
            array(select v_new from unnest(v_carry)), v_carry,
            array(select 'step_reused' from unnest(v_carry)), retry_failed_workflow.now
        );
        raise notice 'retry of run % on the current version reused the outputs of: %', v_old.run_id, array_to_string(v_carry, ', ');
    end if;

    -- PHASE 3: start what is ready (or finish at once if everything was carried over)
    if v_remaining = 0 then
        update workflow.runs r
        set status = 'completed', completed_at = retry_failed_workflow.now,
            output = (
                select coalesce(jsonb_object_agg(ss.step_slug, ss.output), '{}')
                from workflow.step_states ss
                where ss.run_id = v_new
                  and not exists (select 1 from workflow.deps d where d.version_id = r.version_id and d.dep_slug = ss.step_slug)
            )
        where r.run_id = v_new;
        perform workflow._emit_events(array[v_new], array[null::text], array['run_completed'], retry_failed_workflow.now);
        return v_new;
    end if;
    perform workflow._start_steps(
        array(select v_new from workflow.step_states ss where ss.run_id = v_new and ss.status = 'created' and ss.remaining_deps = 0),
        array(select ss.step_slug from workflow.step_states ss where ss.run_id = v_new and ss.status = 'created' and ss.remaining_deps = 0),
        retry_failed_workflow.now
    );
    return v_new;
end;
$$;
