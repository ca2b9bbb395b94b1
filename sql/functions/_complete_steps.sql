-- _complete_steps: advance the DAG after steps completed: count them off their dependents and
-- their runs, finish runs whose last step this was, and start the steps that became ready.
--
-- Called by complete_tasks and _start_steps (empty maps) with parallel arrays of (run, step)
-- pairs whose step_states were just set to completed, with output, in the caller's transaction.
-- Locks, in this order (the order every path uses): dependents' step_states rows, ordered by
-- (run_id, step_slug), FOR NO KEY UPDATE; then runs rows ordered by run_id, FOR NO KEY UPDATE.
-- Each lock is taken in its own statement before the statement that reads through it, so those
-- reads see every transaction that held the row before us (a lock taken inside an UPDATE
-- re-checks the row but not the subqueries of its SET list).
-- Invariants: a dependent starts exactly once (only the transaction that takes remaining_deps to
-- 0 sees it reach 0); a run completes exactly once (same for remaining_steps); nothing starts in
-- a run that is no longer 'started' (failed or cancelled runs stay terminal).
-- Records step_completed and run_completed events (_emit_events), which notify listeners.
create or replace function workflow._complete_steps(run_ids uuid[], step_slugs text[], now timestamptz)
returns void
language plpgsql
set search_path = ''
-- Hot path: plans pinned to key lookups, as every state-machine function; the reasons and the
-- measurements are under "Plans of the state machine" in docs/operations.md.
set plan_cache_mode = force_generic_plan
set join_collapse_limit = 1
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
set random_page_cost = 1.1
as $$
declare
    v_ready_runs uuid[];
    v_ready_steps text[];
    v_live uuid[];
    v_finished uuid[];
begin
    if coalesce(cardinality(_complete_steps.run_ids), 0) = 0 then
        return;
    end if;

    -- PHASE 1: count the completed steps off their dependents
    perform 1
    from workflow.step_states s
    where (s.run_id, s.step_slug) in (
        select d.run_id, dp.step_slug
        from unnest(_complete_steps.run_ids, _complete_steps.step_slugs) as d (run_id, step_slug)
        join workflow.step_states ss on ss.run_id = d.run_id and ss.step_slug = d.step_slug
        join workflow.deps dp on dp.version_id = ss.version_id and dp.dep_slug = d.step_slug
    )
    order by s.run_id, s.step_slug
    for no key update;

    with dec as (
        select d.run_id, dp.step_slug, count(*)::integer as n
        from unnest(_complete_steps.run_ids, _complete_steps.step_slugs) as d (run_id, step_slug)
        join workflow.step_states ss on ss.run_id = d.run_id and ss.step_slug = d.step_slug
        join workflow.deps dp on dp.version_id = ss.version_id and dp.dep_slug = d.step_slug
        group by d.run_id, dp.step_slug
    ),
    upd as (
        update workflow.step_states s
        set remaining_deps = s.remaining_deps - dec.n
        from dec
        where s.run_id = dec.run_id and s.step_slug = dec.step_slug
        returning s.run_id, s.step_slug, s.remaining_deps
    )
    select array_agg(upd.run_id order by upd.run_id, upd.step_slug) filter (where upd.remaining_deps = 0),
           array_agg(upd.step_slug order by upd.run_id, upd.step_slug) filter (where upd.remaining_deps = 0)
    into v_ready_runs, v_ready_steps
    from upd;

    -- PHASE 2: count them off their runs; the run whose counter reaches 0 completes, with the
    -- outputs of its leaf steps (steps nothing depends on) as its output
    perform 1 from workflow.runs r
    where r.run_id = any(_complete_steps.run_ids)
    order by r.run_id
    for no key update;

    with n as (
        select d.run_id, count(*)::integer as c
        from unnest(_complete_steps.run_ids, _complete_steps.step_slugs) as d (run_id, step_slug)
        group by d.run_id
    ),
    upd as (
        update workflow.runs r
        set remaining_steps = r.remaining_steps - n.c,
            status = case when r.remaining_steps = n.c then 'completed' else r.status end,
            completed_at = case when r.remaining_steps = n.c then _complete_steps.now end,
            output = case when r.remaining_steps = n.c then (
                select coalesce(jsonb_object_agg(ss.step_slug, ss.output), '{}')
                from workflow.step_states ss
                where ss.run_id = r.run_id
                  and not exists (select 1 from workflow.deps d where d.version_id = r.version_id and d.dep_slug = ss.step_slug)
            ) end
        from n
        where r.run_id = n.run_id and (r.status = 'started') is true
        returning r.run_id, r.status
    )
    select array_agg(upd.run_id) filter (where upd.status = 'started'),
           array_agg(upd.run_id) filter (where upd.status = 'completed')
    into v_live, v_finished
    from upd;

    perform workflow._emit_events(
        _complete_steps.run_ids || coalesce(v_finished, '{}'),
        _complete_steps.step_slugs || array(select null::text from unnest(v_finished)),
        array(select 'step_completed' from unnest(_complete_steps.run_ids))
            || array(select 'run_completed' from unnest(v_finished)),
        _complete_steps.now
    );

    -- PHASE 3: start what became ready, in runs that are still live
    if v_ready_runs is not null and v_live is not null then
        perform workflow._start_steps(
            array(select r from unnest(v_ready_runs, v_ready_steps) as x (r, s) where r = any(v_live)),
            array(select s from unnest(v_ready_runs, v_ready_steps) as x (r, s) where r = any(v_live)),
            _complete_steps.now
        );
    end if;
end;
$$;
