-- _start_due_runs: start the scheduled runs whose start_at has come.
--
-- Called by _sweep (throttled, from the engine's own calls) and by maintain. A scheduled run
-- (start_flows with start_at in the future, or a debounced start) already has its step states;
-- this moves it to 'started', records run_started, and starts its root steps, as start_flows
-- would have done. Its deadline keeps the run's timeout, counted from now. At most 1,000 runs
-- per call (the rest go to the next sweep, a second later), oldest start_at first.
-- Locks: the due runs rows FOR UPDATE SKIP LOCKED (a run that a debounced start is pushing
-- back, or that is being cancelled, is left for the next call; a concurrent caller takes other
-- rows), then as _start_steps.
-- Returns the number of runs started. Errors: none of its own. Safe to call concurrently and
-- repeatedly: a started run is no longer 'scheduled'.
create or replace function workflow._start_due_runs(now timestamptz)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_runs uuid[];
begin
    with due as materialized (
        select r.run_id from workflow.runs r
        where r.status = 'scheduled' and r.start_at <= _start_due_runs.now and r.cancelled_at is null
        order by r.start_at
        limit 1000
        for update skip locked
    ),
    started as (
        update workflow.runs r
        set status = 'started', started_at = _start_due_runs.now,
            deadline_at = _start_due_runs.now + (r.deadline_at - r.started_at)
        from due where r.run_id = due.run_id
        returning r.run_id
    )
    select array_agg(started.run_id order by started.run_id) into v_runs from started;
    if v_runs is null then
        return 0;
    end if;
    perform workflow._emit_events(
        v_runs,
        array(select null::text from unnest(v_runs)),
        array(select 'run_started' from unnest(v_runs)),
        _start_due_runs.now
    );
    perform workflow._start_steps(
        array(select ss.run_id from workflow.step_states ss
              join workflow.runs r on r.run_id = ss.run_id
              join workflow.steps s on s.version_id = r.version_id and s.step_slug = ss.step_slug
              where ss.run_id = any(v_runs) and s.deps_count = 0 order by ss.run_id, s.step_index),
        array(select ss.step_slug from workflow.step_states ss
              join workflow.runs r on r.run_id = ss.run_id
              join workflow.steps s on s.version_id = r.version_id and s.step_slug = ss.step_slug
              where ss.run_id = any(v_runs) and s.deps_count = 0 order by ss.run_id, s.step_index),
        _start_due_runs.now
    );
    return cardinality(v_runs);
end;
$$;
