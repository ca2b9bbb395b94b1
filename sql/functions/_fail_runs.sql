-- _fail_runs: fail runs because one of their steps failed, and leave nothing of them behind.
--
-- Called by _fail_tasks_final (a task out of attempts: from fail_tasks, and from claim_tasks when
-- an expired lease was the last attempt) and _start_steps (a map over a non-array), with
-- parallel arrays (run, failing step, error), and by _expire_waits (a wait step's timeout).
-- For each run still 'started': the step and the run become 'failed' with the error, every
-- other queued or started task of the run becomes 'failed' (_sweep_runs), and its queue message
-- is deleted; its wait steps stop waiting (event_waits rows deleted). Records step_failed and
-- run_failed events (_emit_events), which notify listeners. Not used by cancellation (_cancel_runs).
-- Locks, in order: the failing steps' step_states (by run_id, step_slug), the runs FOR UPDATE (by
-- run_id; this conflicts with the FOR KEY SHARE of claim_tasks, so claims that got the run first
-- commit before we sweep, and later claims skip the run), then the run's live tasks FOR UPDATE
-- SKIP LOCKED. A task skipped here is held by a completer or failer of the same run, which finds
-- the run failed when it reaches the run row and cleans up its own task and message.
-- Invariant 4 (docs/architecture.md, "Invariants"): after commit no live message or claimable
-- task remains for the run.
create or replace function workflow._fail_runs(run_ids uuid[], step_slugs text[], errors text[], now timestamptz)
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
    v_failed uuid[];
begin
    -- PHASE 1: locks in the common order
    perform 1 from workflow.step_states s
    where (s.run_id, s.step_slug) in (select * from unnest(_fail_runs.run_ids, _fail_runs.step_slugs))
    order by s.run_id, s.step_slug
    for no key update;
    perform 1 from workflow.runs r
    where r.run_id = any(_fail_runs.run_ids)
    order by r.run_id
    for update;

    -- PHASE 2: the runs (first error per run wins) and their failing steps
    with f as (
        select distinct on (x.run_id) x.run_id, x.step_slug, x.error
        from unnest(_fail_runs.run_ids, _fail_runs.step_slugs, _fail_runs.errors) with ordinality as x (run_id, step_slug, error, ord)
        order by x.run_id, x.ord
    ),
    upd as (
        update workflow.runs r
        set status = 'failed', failed_at = _fail_runs.now, error_message = f.error, failed_step = f.step_slug
        from f
        where r.run_id = f.run_id and (r.status = 'started') is true
        returning r.run_id
    )
    select array_agg(upd.run_id) into v_failed from upd;
    if v_failed is null then
        return;
    end if;

    update workflow.step_states s
    set status = 'failed', failed_at = _fail_runs.now, error_message = x.error
    from unnest(_fail_runs.run_ids, _fail_runs.step_slugs, _fail_runs.errors) as x (run_id, step_slug, error)
    where s.run_id = x.run_id and s.step_slug = x.step_slug and s.run_id = any(v_failed)
      and s.status in ('created', 'started');

    -- PHASE 3: sweep the runs' live tasks and their messages, and their wait steps' waits
    perform workflow._sweep_runs(v_failed, 'run failed', _fail_runs.now);
    delete from workflow.event_waits w where w.run_id = any(v_failed);

    perform workflow._emit_events(
        array(select r.run_id from workflow.runs r where r.run_id = any(v_failed) order by r.run_id)
            || array(select r.run_id from workflow.runs r where r.run_id = any(v_failed) order by r.run_id),
        array(select r.failed_step from workflow.runs r where r.run_id = any(v_failed) order by r.run_id)
            || array(select null::text from unnest(v_failed)),
        array(select 'step_failed' from unnest(v_failed)) || array(select 'run_failed' from unnest(v_failed)),
        _fail_runs.now
    );
end;
$$;
