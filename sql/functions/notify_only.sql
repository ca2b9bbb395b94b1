-- notify_only: a NOTIFY without persistence (fire-and-forget).
--
-- Called by psql users and clients for ephemeral signals. The payload is checked against
-- PostgreSQL's limit (under 8,000 bytes) first, so an oversized payload gets our error rather than
-- the server's. Nothing is stored: a listener that is not connected misses it.
-- Errors: WF001 invalid or reserved channel name, WF014 payload of 8,000 bytes or more.
create or replace function workflow.notify_only(channel text, payload text default '')
returns void
language plpgsql
set search_path = ''
as $$
begin
    perform workflow._validate_name('channel', notify_only.channel);
    if octet_length(coalesce(notify_only.payload, '')) >= 8000 then
        raise exception 'notification payload is % bytes; the limit is 7,999', octet_length(notify_only.payload)
            using errcode = 'WF014', hint = 'Send large data with send_with_notify, which persists it and notifies its id.';
    end if;
    perform pg_notify(notify_only.channel, coalesce(notify_only.payload, ''));
end;
$$;
