-- _channel_queue: the pgmq queue behind an application channel, created on first use.
--
-- Called by send_with_notify (create_missing => true) and ack_message (false: an
-- unknown channel has no messages, so they return nothing rather than create a queue). Validates
-- the name (WF001). Returns the queue name ('wfch_' || channel), or null when it does not exist
-- and create_missing is false. Concurrent first uses are safe: pgmq.create takes its own advisory lock and
-- the registry insert ignores a duplicate.
create or replace function workflow._channel_queue(channel text, create_missing boolean)
returns text
language plpgsql
set search_path = ''
as $$
declare
    v_queue text := 'wfch_' || _channel_queue.channel;
begin
    perform workflow._validate_name('channel', _channel_queue.channel);
    if exists (select 1 from workflow.channels c where c.channel = _channel_queue.channel) then
        return v_queue;
    end if;
    if not _channel_queue.create_missing then
        return null;
    end if;
    perform pgmq.create(v_queue);
    perform workflow._tune_queue(v_queue);
    insert into workflow.channels (channel, queue_name) values (_channel_queue.channel, v_queue)
    on conflict do nothing;
    return v_queue;
end;
$$;
