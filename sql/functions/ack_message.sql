-- ack_message: acknowledge a channel message: move it from the live queue to the archive.
--
-- Called by consumers that treat a channel as a work list. History (read_channel) still shows it,
-- flagged acknowledged. Returns false when the message is not live (unknown, or already
-- acknowledged), so a repeat is safe. Locks the message row.
-- Errors: WF001 invalid channel name.
create or replace function workflow.ack_message(channel text, message_id bigint)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    v_queue text := workflow._channel_queue(ack_message.channel, false);
begin
    if v_queue is null then
        return false;
    end if;
    return pgmq.archive(v_queue, ack_message.message_id);
end;
$$;
