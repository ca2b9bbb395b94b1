-- send_event: send an event; the step waiting for it completes with the payload as its output.
--
-- event_name: the name a wait step names in wait_for (definition_rules() control.event_name);
-- event_key: the key that scopes it to one run (the run id, or the value at the wait step's
-- event_key path of the run input); payload: any JSON (the wait step's output), at most
-- control.max_payload_bytes (1 MiB) as text; keep: how long an event nobody waits for yet is
-- kept for a wait step that starts later (default one day; 1 s to 365 days).
-- Events are kept rather than refused when no step waits yet (the wait may not have started,
-- or the run may not exist yet), but an event name that no wait step of any flow version names
-- is refused (WF032): a typo fails loudly instead of being kept for nobody.
-- Called by psql users, Client.send_event, the CLI (send-event) and handlers. Delivery, locks
-- and invariants: _send_event. Returns {"status": "delivered", "run_id", "step"} or
-- {"status": "kept", "event_id", "expires_at"}.
-- Errors: WF031 a malformed name, an empty or over-long key (200 characters), a keep out of
-- range; WF032 an event name no flow waits for; WF033 a payload over the limit. Nothing changes
-- on an error. Not idempotent: a second call sends a second event (the next waiter takes it).
create or replace function workflow.send_event(
    event_name text,
    event_key text,
    payload jsonb default null,
    keep interval default null,
    now timestamptz default clock_timestamp()
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_rules jsonb := workflow.definition_rules() -> 'control';
    v_keep interval := coalesce(send_event.keep, make_interval(secs => (v_rules ->> 'default_keep_seconds')::integer));
begin
    -- GUARD: arguments
    if send_event.event_name is null or send_event.event_name !~ (v_rules ->> 'event_name') then
        raise exception 'event_name must match %, got %', v_rules ->> 'event_name', coalesce(quote_literal(send_event.event_name), 'null')
            using errcode = 'WF031', hint = 'Use the name the wait step gives in wait_for.';
    end if;
    if send_event.event_key is null or length(send_event.event_key) = 0
        or length(send_event.event_key) > (v_rules ->> 'max_key_length')::integer then
        raise exception 'event_key must be 1 to % characters, got %', v_rules ->> 'max_key_length',
            coalesce(length(send_event.event_key)::text || ' characters', 'null')
            using errcode = 'WF031', hint = 'The key scopes the event to one run: its run id, or the input value its wait step names.';
    end if;
    if v_keep < interval '1 second' or v_keep > interval '365 days' then
        raise exception 'keep must be between 1 second and 365 days, got %', v_keep
            using errcode = 'WF031';
    end if;
    if octet_length(send_event.payload::text) > (v_rules ->> 'max_payload_bytes')::integer then
        raise exception 'event payload is % bytes, over the limit of % bytes', octet_length(send_event.payload::text),
            v_rules ->> 'max_payload_bytes'
            using errcode = 'WF033', hint = 'Store large data elsewhere and send a reference to it.';
    end if;
    if not exists (
        select 1 from workflow.steps st
        where st.step_type = 'wait' and st.control ->> 'wait_for' = send_event.event_name
    ) then
        raise exception 'no flow waits for event %', send_event.event_name
            using errcode = 'WF032', hint = 'Register the flow whose wait step names it (wait_for) first, or check the spelling.';
    end if;

    return workflow._send_event(send_event.event_name, send_event.event_key, send_event.payload, v_keep, send_event.now);
end;
$$;
