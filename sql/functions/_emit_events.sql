-- _emit_events: record run and step state changes and wake their listeners.
--
-- Called by the state machine (start_flow, _complete_steps, _fail_runs, _cancel_runs,
-- pause/resume, retry) with parallel arrays, once per statement that changes state, not per row:
-- one INSERT for the whole set. Notifications: 'workflow_run_events' with an empty payload, which
-- PostgreSQL folds into one notification per transaction however many events it holds (listeners
-- read the new rows from workflow.events); and, per run, 'workflow_run_<run_id>' with a JSON
-- payload {"event_id", "run_id", "event", "step", "status"} of the run's latest event in this
-- call, which a client waiting on one run can act on without a query.
-- Locks nothing beyond the rows it inserts.
create or replace function workflow._emit_events(
    run_ids uuid[],
    step_slugs text[],
    events text[],
    now timestamptz
)
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
-- No JIT: with seq scans disabled, a scan that has no index (the sweep's read of workers) costs
-- 1e10 and sets off JIT compilation, ~200 ms per statement (see docs/operations.md).
set jit = off
as $$
declare
    v_ids bigint[];
    v_runs uuid[];
    v_steps text[];
    v_events text[];
begin
    if coalesce(cardinality(_emit_events.run_ids), 0) = 0 then
        return;
    end if;
    with ins as (
        insert into workflow.events (created_at, run_id, flow_slug, step_slug, event)
        select _emit_events.now, x.run_id, r.flow_slug, x.step_slug, x.event
        from unnest(_emit_events.run_ids, _emit_events.step_slugs, _emit_events.events) with ordinality as x (run_id, step_slug, event, ord)
        join workflow.runs r on r.run_id = x.run_id
        order by x.ord
        returning workflow.events.event_id, workflow.events.run_id, workflow.events.step_slug, workflow.events.event
    )
    select array_agg(ins.event_id order by ins.event_id), array_agg(ins.run_id order by ins.event_id),
           array_agg(ins.step_slug order by ins.event_id), array_agg(ins.event order by ins.event_id)
    into v_ids, v_runs, v_steps, v_events
    from ins;

    -- One notification per run per call, carrying its latest event: a listener that wants every
    -- event reads them from workflow.events (read_events after the last id it saw); the payload
    -- lets a waiter act on a run's end without that query. A single-step run completing sends
    -- one notification instead of two (step_completed, run_completed).
    perform pg_notify('workflow_run_' || e.run_id, jsonb_build_object(
        'event_id', e.event_id,
        'run_id', e.run_id,
        'event', e.event,
        'step', e.step_slug,
        -- The run status each event leaves (null for step events), from definition_rules():
        -- an immutable call without arguments, a constant in the cached plan.
        'status', workflow.definition_rules() -> 'event_statuses' ->> e.event
    )::text)
    from (
        select distinct on (x.run_id) x.event_id, x.run_id, x.step_slug, x.event
        from unnest(v_ids, v_runs, v_steps, v_events) as x (event_id, run_id, step_slug, event)
        order by x.run_id, x.event_id desc
    ) as e;
    perform pg_notify('workflow_run_events', '');
end;
$$;
