-- _event_lock_id: the advisory lock id of an event (name, key), for _lock_event and for callers
-- that must take several in one order (_start_waits sorts by it).
-- Locks nothing; raises nothing; immutable.
create or replace function workflow._event_lock_id(event_name text, event_key text)
returns bigint
language sql
immutable
set search_path = ''
as $$
    select hashtextextended('workflow.event:' || _event_lock_id.event_name || chr(1) || _event_lock_id.event_key, 0)
$$;
