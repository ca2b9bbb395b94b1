-- _lock_event: serialise everything that hands one event (name, key) over between a sender and a
-- waiter, until the end of the caller's transaction.
--
-- Called by send_event, approve and reject (through _send_event) and by _start_waits before they
-- read event_waits or pending_events for that (name, key). A transaction-scoped advisory lock on
-- a 64-bit hash of the pair: under READ COMMITTED the next statement of the caller sees what the
-- previous holder committed, so an event sent while a wait step starts is found by exactly one
-- of the two (a hash collision only makes two keys wait for each other). Locks: that advisory
-- lock, after whatever the caller holds; _start_waits takes several in ascending hash order.
-- Raises nothing. Safe to repeat (a held lock is taken again at once).
create or replace function workflow._lock_event(event_name text, event_key text)
returns void
language sql
set search_path = ''
as $$
    select pg_advisory_xact_lock(workflow._event_lock_id(_lock_event.event_name, _lock_event.event_key))
$$;
