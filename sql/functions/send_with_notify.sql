-- send_with_notify: persist a message on a channel and notify its listeners, atomically.
--
-- Called by psql users, clients and workflow steps. The message (any JSON value) goes into the
-- channel's pgmq queue (wfch_<channel>, created on first use), and pg_notify(channel, message id)
-- is issued in the same transaction, so a listener is only woken for a message it can read, and a
-- message is never persisted without its notification (or the reverse). Returns the message id;
-- ids increase per channel, which is what listeners replay from after a disconnect.
-- Locks: the new queue row. Errors: WF001 invalid or reserved channel name, WF009 null message.
create or replace function workflow.send_with_notify(channel text, message jsonb)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
    v_id bigint;
begin
    if send_with_notify.message is null then
        raise exception 'a message must be a JSON value, got null' using errcode = 'WF009';
    end if;
    select s into v_id from pgmq.send(workflow._channel_queue(send_with_notify.channel, true), send_with_notify.message) as s;
    perform pg_notify(send_with_notify.channel, v_id::text);
    return v_id;
end;
$$;
