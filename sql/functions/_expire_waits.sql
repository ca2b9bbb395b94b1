-- _expire_waits: end the waits whose timeout has come, and drop kept events nobody took.
--
-- Called by _sweep (at most once a second, from claim_tasks, start_flows, get_run_status, and
-- maintain) so that a wait step's timeout needs no worker, timer or pg_cron. A wait step whose
-- timeout_at has come fails, and its run with it (_fail_runs, error "wait step <s> timed out
-- after <n> s waiting for event <name> (key <key>)"); up to 1000 per call, oldest first, the
-- rest at the next sweep. Kept events past their expires_at are deleted (up to 10000 per call).
-- Cost when nothing is due: two index probes (event_waits_due_idx, pending_events_expires_idx).
-- Locks, one wait at a time: its event lock (_lock_event), then its event_waits row (deleted)
-- and _fail_runs' locks (step_states, runs): the order a sender takes them in, so the two
-- cannot deadlock. A wait that a sender completed meanwhile is gone when re-read, and left
-- alone (the sender's delivery wins).
-- Returns the number of waits that timed out. Raises nothing of its own. Safe to repeat.
create or replace function workflow._expire_waits(now timestamptz)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_wait record;
    v_count integer := 0;
begin
    for v_wait in
        select w.run_id, w.step_slug, w.event_name, w.event_key, w.timeout_at, w.created_at
        from workflow.event_waits w
        where w.timeout_at <= _expire_waits.now
        order by w.timeout_at, w.run_id, w.step_slug
        limit 1000
    loop
        perform workflow._lock_event(v_wait.event_name, v_wait.event_key);
        delete from workflow.event_waits w
        where w.run_id = v_wait.run_id and w.step_slug = v_wait.step_slug and w.timeout_at <= _expire_waits.now;
        continue when not found;
        perform workflow._fail_runs(
            array[v_wait.run_id], array[v_wait.step_slug],
            array[format('wait step %s timed out after %s s waiting for event %s (key %s)', v_wait.step_slug,
                round(extract(epoch from v_wait.timeout_at - v_wait.created_at)), v_wait.event_name, v_wait.event_key)],
            _expire_waits.now
        );
        v_count := v_count + 1;
    end loop;
    delete from workflow.pending_events e
    where e.event_id in (
        select x.event_id from workflow.pending_events x
        where x.expires_at <= _expire_waits.now
        order by x.expires_at
        limit 10000
    );
    return v_count;
end;
$$;
