-- _send_event: hand one event over to the step waiting for it, or keep it for one that will.
--
-- Called by send_event, approve and reject after their guards, in the caller's transaction.
-- Under the event's advisory lock (_lock_event) it takes the oldest event_waits row for
-- (event_name, event_key) (only the one of target_run / target_step when they are given), locks
-- that step state and its run (step_states then runs, FOR NO KEY UPDATE: the common order) and,
-- when both are still started (a paused run included: its next steps are parked), deletes the
-- wait, completes the step with the payload as its output and advances the DAG
-- (_complete_steps: its dependents start in this transaction and their queues are notified).
-- A wait left by a run that ended meanwhile is deleted and the next one tried. With no live
-- waiter the event is kept in pending_events until now + keep, and a wait step that starts
-- before then consumes it (_start_waits).
-- Invariants: an event wakes at most one step and a step is woken at most once (both sides hold
-- the lock; the wait row is deleted by the transaction that completes the step); an event is
-- never delivered to a run other than the one whose key it names.
-- Returns {"status": "delivered", "run_id", "step"} or {"status": "kept", "event_id",
-- "expires_at"}. Raises nothing of its own (the public functions check their arguments).
create or replace function workflow._send_event(
    event_name text,
    event_key text,
    payload jsonb,
    keep interval,
    now timestamptz,
    target_run uuid default null,
    target_step text default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_wait record;
    v_step_status text;
    v_run_status text;
    v_event_id bigint;
begin
    perform workflow._lock_event(_send_event.event_name, _send_event.event_key);

    -- PHASE 1: the oldest live waiter takes it
    for v_wait in
        select w.run_id, w.step_slug
        from workflow.event_waits w
        where w.event_name = _send_event.event_name and w.event_key = _send_event.event_key
          and (_send_event.target_run is null or (w.run_id = _send_event.target_run and w.step_slug = _send_event.target_step))
        order by w.created_at, w.run_id, w.step_slug
    loop
        select s.status into v_step_status
        from workflow.step_states s
        where s.run_id = v_wait.run_id and s.step_slug = v_wait.step_slug
        for no key update;
        select r.status into v_run_status
        from workflow.runs r
        where r.run_id = v_wait.run_id
        for no key update;
        delete from workflow.event_waits w where w.run_id = v_wait.run_id and w.step_slug = v_wait.step_slug;
        if v_step_status = 'started' and v_run_status = 'started' then
            update workflow.step_states s
            set status = 'completed', remaining_tasks = 0, output = _send_event.payload, completed_at = _send_event.now
            where s.run_id = v_wait.run_id and s.step_slug = v_wait.step_slug;
            perform workflow._complete_steps(array[v_wait.run_id], array[v_wait.step_slug], _send_event.now);
            return jsonb_build_object('status', 'delivered', 'run_id', v_wait.run_id, 'step', v_wait.step_slug);
        end if;
    end loop;

    -- PHASE 2: nobody waits yet: keep it
    insert into workflow.pending_events (event_name, event_key, payload, sent_at, expires_at)
    values (_send_event.event_name, _send_event.event_key, _send_event.payload, _send_event.now,
            _send_event.now + _send_event.keep)
    returning workflow.pending_events.event_id into v_event_id;
    return jsonb_build_object('status', 'kept', 'event_id', v_event_id, 'expires_at', _send_event.now + _send_event.keep);
end;
$$;
