-- read_events: the engine's run and step events after a given id, in order.
--
-- Called by event listeners (woken by NOTIFY workflow_run_events or workflow_run_<run_id>; they
-- read from the last event_id they saw, so a listener that was away misses nothing still kept),
-- dashboards and psql users. for_run_id restricts to one run. Event names: run_started,
-- step_completed, step_failed, run_completed, run_failed, run_cancelled, run_paused,
-- run_resumed, step_reused (a retry on the current version carried the step's output over).
-- Locks nothing. Errors: WF010 max_events out of range.
create or replace function workflow.read_events(
    after_id bigint default 0,
    for_run_id uuid default null,
    max_events integer default 100
)
returns table (
    event_id bigint,
    created_at timestamptz,
    run_id uuid,
    flow_slug text,
    step_slug text,
    event text
)
language plpgsql
stable
set search_path = ''
as $$
begin
    if read_events.max_events is null or read_events.max_events not between 1 and 10000 then
        raise exception 'max_events must be between 1 and 10000, got %', read_events.max_events using errcode = 'WF010';
    end if;
    return query
    select e.event_id, e.created_at, e.run_id, e.flow_slug, e.step_slug, e.event
    from workflow.events e
    where e.event_id > coalesce(read_events.after_id, 0)
      and (read_events.for_run_id is null or e.run_id = read_events.for_run_id)
    order by e.event_id
    limit read_events.max_events;
end;
$$;
