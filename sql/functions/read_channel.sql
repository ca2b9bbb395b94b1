-- read_channel: a channel's message history after a given id, in id order.
--
-- Called by listeners (replaying what they missed after a reconnect, and fetching the message a
-- notification named), the CLI and psql users. Reads both the live queue and the archive (messages
-- acknowledged with ack_message), so history survives acknowledgement; prune_archives (retention)
-- bounds it. after_id = 0 reads from the start; max_messages caps one page (1..1000).
-- Returns nothing for a channel that was never used. Locks nothing; does not change visibility
-- (unlike pgmq.read: channel messages are a log, not a work queue).
-- Errors: WF001 invalid channel name, WF010 max_messages out of range.
create or replace function workflow.read_channel(
    channel text,
    after_id bigint default 0,
    max_messages integer default 100
)
returns table (message_id bigint, message jsonb, enqueued_at timestamptz, acknowledged boolean)
language plpgsql
stable
set search_path = ''
as $$
declare
    v_queue text;
begin
    if read_channel.max_messages is null or read_channel.max_messages not between 1 and 1000 then
        raise exception 'max_messages must be between 1 and 1000, got %', read_channel.max_messages using errcode = 'WF010';
    end if;
    -- Read-only lookup: _channel_queue with create_missing => false never writes, but it is volatile, so
    -- resolve the name here instead to keep this function stable.
    perform workflow._validate_name('channel', read_channel.channel);
    select c.queue_name into v_queue from workflow.channels c where c.channel = read_channel.channel;
    if v_queue is null then
        return;
    end if;
    return query execute format($sql$
        select m.msg_id, m.message, m.enqueued_at, m.acknowledged from (
            (select q.msg_id, q.message, q.enqueued_at, false as acknowledged
             from pgmq.%1$I q where q.msg_id > $1 order by q.msg_id limit $2)
            union all
            (select a.msg_id, a.message, a.enqueued_at, true
             from pgmq.%2$I a where a.msg_id > $1 order by a.msg_id limit $2)
        ) m
        order by m.msg_id
        limit $2
    $sql$, 'q_' || v_queue, 'a_' || v_queue)
    using coalesce(read_channel.after_id, 0), read_channel.max_messages;
end;
$$;
