-- _start_waits: start wait steps: consume an event kept for them, or record that they wait.
--
-- Called by _start_steps with the (run, step) pairs it started, of any kind (pairs that are not
-- started wait steps are ignored). For each wait step, under the advisory lock of its event
-- (name, key) (_lock_event; several taken in ascending lock id order, the order every caller
-- that takes more than one uses): the oldest unexpired pending_events row for the pair is
-- deleted and becomes the step's output (the step state is set completed here; the caller
-- counts it off, as for an empty map), else one event_waits row is inserted, with
-- timeout_at = now + wait_timeout when the step has one. A wait step has no task and no queue
-- message: nothing can claim it, and an idle worker pays nothing for it.
-- The key must resolve (_start_steps fails the run before calling when it does not).
-- Locks: the advisory locks; the pending_events rows it deletes; inserts event_waits.
-- Invariants: an event is consumed once (deleted under its lock), a wait step completes once
-- (its status moves started -> completed under the step_states lock the caller holds).
-- Returns the pairs completed at once. Raises nothing of its own.
create or replace function workflow._start_waits(run_ids uuid[], step_slugs text[], now timestamptz)
returns table (run_id uuid, step_slug text)
language plpgsql
set search_path = ''
as $$
declare
    v_wait record;
    v_payload jsonb;
    v_event_id bigint;
begin
    for v_wait in
        select r.run_id, r.step_slug, st.control ->> 'wait_for' as event_name,
            workflow._wait_key(st.control, ru.run_id, ru.input) as event_key,
            (st.control ->> 'wait_timeout')::integer as wait_timeout
        from unnest(_start_waits.run_ids, _start_waits.step_slugs) as r (run_id, step_slug)
        join workflow.runs ru on ru.run_id = r.run_id
        join workflow.step_states s on s.run_id = r.run_id and s.step_slug = r.step_slug
        join workflow.steps st on st.version_id = s.version_id and st.step_slug = s.step_slug
        where st.step_type = 'wait' and s.status = 'started'
        order by workflow._event_lock_id(st.control ->> 'wait_for', workflow._wait_key(st.control, ru.run_id, ru.input)),
            r.run_id, r.step_slug
    loop
        perform workflow._lock_event(v_wait.event_name, v_wait.event_key);
        select e.event_id, e.payload into v_event_id, v_payload
        from workflow.pending_events e
        where e.event_name = v_wait.event_name and e.event_key = v_wait.event_key and e.expires_at > _start_waits.now
        order by e.event_id
        limit 1;
        if v_event_id is not null then
            delete from workflow.pending_events e where e.event_id = v_event_id;
            update workflow.step_states s
            set status = 'completed', remaining_tasks = 0, output = v_payload, completed_at = _start_waits.now
            where s.run_id = v_wait.run_id and s.step_slug = v_wait.step_slug;
            run_id := v_wait.run_id;
            step_slug := v_wait.step_slug;
            return next;
        else
            insert into workflow.event_waits as w (run_id, step_slug, event_name, event_key, timeout_at, created_at)
            values (
                v_wait.run_id, v_wait.step_slug, v_wait.event_name, v_wait.event_key,
                _start_waits.now + make_interval(secs => v_wait.wait_timeout), _start_waits.now
            )
            on conflict on constraint event_waits_pkey do nothing;
        end if;
        v_event_id := null;
    end loop;
end;
$$;
