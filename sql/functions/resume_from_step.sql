-- resume_from_step: restart a failed or completed run from a named step, as a new run that
-- reuses every output upstream of it; returns the new run's id.
--
-- The new run (same flow version and input; retry_of = the old run, resumed_from = step_slug,
-- resume_reason = reason) carries over, as completed with their outputs, the steps of the old run
-- that completed (or were skipped) and are neither step_slug nor downstream of it; every other
-- step runs again. A map step that runs again and whose dependencies were all carried over maps
-- over the same array, so the elements whose task completed in the old run keep their outputs
-- (the new tasks are created completed, without a queue message) and only the unfinished ones
-- run: resuming a failed 1,000-element map from that step runs only its failed elements.
-- owner: the process that executes the run's local steps, as in retry_failed_workflow (WF019
-- when a local step runs again and none is given).
-- Called by psql users, Client.resume_from_step and the CLI (rerun). Locks: the old run's row
-- FOR KEY SHARE (it must not be deleted meanwhile); inserts the new run's rows; then the locks
-- of _start_steps and, when reused elements complete a map step, _complete_steps.
-- Errors: WF011 unknown run; WF013 the run is still running (or scheduled): cancel it first, or
-- retry it when it fails; WF038 step_slug is not a step of the run's flow version; WF001 a
-- malformed owner; WF019 local steps without an owner. Nothing is created on an error. Not
-- idempotent: each call makes a new run.
create or replace function workflow.resume_from_step(
    run_id uuid,
    step_slug text,
    reason text default null,
    owner text default null,
    now timestamptz default clock_timestamp()
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_old record;
    v_new uuid := gen_random_uuid();
    v_rerun text[];
    v_carry text[];
    v_remaining integer;
    v_map record;
    v_reused integer;
    v_done_runs uuid[] := '{}'::uuid[];
    v_done_steps text[] := '{}'::text[];
begin
    -- GUARD: the run, its state, the step, the owner
    if resume_from_step.owner is not null and resume_from_step.owner !~ '^[A-Za-z0-9_.:@/-]{1,200}$' then
        raise exception 'invalid owner worker id %', quote_literal(resume_from_step.owner)
            using errcode = 'WF001', hint = 'Use 1-200 characters among letters, digits and _ . : @ / -.';
    end if;
    select r.run_id, r.flow_slug, r.status, r.input, r.version_id, r.concurrency_key, r.priority into v_old
    from workflow.runs r where r.run_id = resume_from_step.run_id
    for key share;
    if not found then
        raise exception 'run % does not exist', resume_from_step.run_id using errcode = 'WF011';
    end if;
    if v_old.status not in ('failed', 'completed') then
        raise exception 'run % is %: only a failed or completed run can be resumed', resume_from_step.run_id, v_old.status
            using errcode = 'WF013', hint = 'Cancel it first (cancel_workflow_run), or wait until it ends.';
    end if;
    if not exists (
        select 1 from workflow.steps s where s.version_id = v_old.version_id and s.step_slug = resume_from_step.step_slug
    ) then
        raise exception 'flow % (the version run % uses) has no step %', v_old.flow_slug, resume_from_step.run_id,
            coalesce(resume_from_step.step_slug, 'null')
            using errcode = 'WF038', hint = 'get_run_status lists the run''s steps.';
    end if;

    -- PHASE 1: the step and everything downstream of it run again; the rest that completed is carried
    with recursive down (slug) as (
        select resume_from_step.step_slug
        union
        select d.step_slug from workflow.deps d join down on d.dep_slug = down.slug
        where d.version_id = v_old.version_id
    )
    select array_agg(down.slug) into v_rerun from down;
    select coalesce(array_agg(os.step_slug), '{}') into v_carry
    from workflow.step_states os
    where os.run_id = v_old.run_id and os.status in ('completed', 'skipped') and not os.step_slug = any(v_rerun);
    if resume_from_step.owner is null and exists (
        select 1 from workflow.steps s
        where s.version_id = v_old.version_id and s.execution = 'local' and not s.step_slug = any(v_carry)
    ) then
        raise exception 'flow % has local steps and the resumed run has no owner', v_old.flow_slug
            using errcode = 'WF019',
                hint = 'Local steps run in the process that executes the run: resume it with an owner (the executing process), or mark the steps distributed.';
    end if;
    select count(*) filter (where not s.step_slug = any(v_carry)) into v_remaining
    from workflow.steps s where s.version_id = v_old.version_id;

    insert into workflow.runs (run_id, flow_slug, version_id, remaining_steps, input, started_at, deadline_at, retry_of,
        owner_worker_id, concurrency_key, priority, resumed_from, resume_reason)
    select v_new, v_old.flow_slug, v_old.version_id, v_remaining, v_old.input, resume_from_step.now,
        resume_from_step.now + make_interval(secs => v.timeout_seconds), v_old.run_id, resume_from_step.owner,
        v_old.concurrency_key, v_old.priority, resume_from_step.step_slug, resume_from_step.reason
    from workflow.flow_versions v where v.version_id = v_old.version_id;

    -- PHASE 2: step states: carried (as they ended, with output) or waiting on what is not carried
    insert into workflow.step_states (run_id, step_slug, flow_slug, version_id, status, remaining_deps, remaining_tasks,
        initial_tasks, output, started_at, completed_at)
    select v_new, s.step_slug, s.flow_slug, s.version_id,
        case when c.carried then os.status else 'created' end,
        case when c.carried then 0 else (
            select count(*)::integer from workflow.deps d
            where d.version_id = s.version_id and d.step_slug = s.step_slug and not d.dep_slug = any(v_carry)
        ) end,
        case when c.carried then 0 end,
        case when c.carried then os.initial_tasks end,
        case when c.carried then os.output end,
        case when c.carried then resume_from_step.now end,
        case when c.carried then resume_from_step.now end
    from workflow.steps s
    left join workflow.step_states os on os.run_id = v_old.run_id and os.step_slug = s.step_slug
    cross join lateral (select s.step_slug = any(v_carry) as carried) as c
    where s.version_id = v_old.version_id;
    perform workflow._emit_events(array[v_new], array[null::text], array['run_started'], resume_from_step.now);

    -- PHASE 3: start what is ready
    perform workflow._start_steps(
        array(select v_new from workflow.step_states ss where ss.run_id = v_new and ss.status = 'created' and ss.remaining_deps = 0),
        array(select ss.step_slug from workflow.step_states ss where ss.run_id = v_new and ss.status = 'created' and ss.remaining_deps = 0),
        resume_from_step.now
    );

    -- PHASE 4: map steps just started over carried inputs keep the elements that completed before.
    -- Their new tasks are still this transaction's (nobody has claimed them): they take the old
    -- outputs, and their messages are deleted.
    for v_map in
        select ss.step_slug, t.queue_name, array_agg(t.task_id) as task_ids, array_agg(t.message_id) as message_ids
        from workflow.step_states ss
        join workflow.steps st on st.version_id = ss.version_id and st.step_slug = ss.step_slug
        join workflow.tasks t on t.run_id = ss.run_id and t.step_slug = ss.step_slug and t.status = 'queued'
        join workflow.tasks ot on ot.run_id = v_old.run_id and ot.step_slug = t.step_slug and ot.task_index = t.task_index
            and ot.status = 'completed' and ot.item is not distinct from t.item
        where ss.run_id = v_new and ss.status = 'started' and st.step_type = 'map'
          and not exists (
              select 1 from workflow.deps d
              where d.version_id = ss.version_id and d.step_slug = ss.step_slug and not d.dep_slug = any(v_carry))
        group by ss.step_slug, t.queue_name
    loop
        update workflow.tasks t
        set status = 'completed', output = ot.output, completed_at = resume_from_step.now, message_id = null
        from workflow.tasks ot
        where t.task_id = any(v_map.task_ids)
          and ot.run_id = v_old.run_id and ot.step_slug = t.step_slug and ot.task_index = t.task_index;
        get diagnostics v_reused = row_count;
        execute format('delete from pgmq.%I where msg_id = any($1)', 'q_' || v_map.queue_name) using v_map.message_ids;
        update workflow.step_states ss
        set remaining_tasks = ss.remaining_tasks - v_reused
        where ss.run_id = v_new and ss.step_slug = v_map.step_slug;
    end loop;
    -- A map all of whose elements completed before is complete now: count it off (cascades).
    with done as (
        update workflow.step_states ss
        set status = 'completed', completed_at = resume_from_step.now,
            output = (select coalesce(jsonb_agg(t.output order by t.task_index), '[]'::jsonb)
                      from workflow.tasks t where t.run_id = ss.run_id and t.step_slug = ss.step_slug)
        where ss.run_id = v_new and ss.status = 'started' and ss.remaining_tasks = 0
        returning ss.run_id, ss.step_slug
    )
    select coalesce(array_agg(done.run_id), '{}'), coalesce(array_agg(done.step_slug), '{}') into v_done_runs, v_done_steps
    from done;
    if cardinality(v_done_steps) > 0 then
        perform workflow._complete_steps(v_done_runs, v_done_steps, resume_from_step.now);
    end if;
    return v_new;
end;
$$;
