-- channel_last_id: the highest message id a channel has had (live or acknowledged); 0 if none.
--
-- Called by listeners that start live (without replaying history): ids after this one are new to
-- them. Reads the channel's pgmq queue and archive, so callers need not know pgmq's table names.
-- Returns 0 for a channel never used. Locks nothing. Errors: WF001 invalid channel name.
create or replace function workflow.channel_last_id(channel text)
returns bigint
language plpgsql
stable
set search_path = ''
as $$
declare
    v_queue text;
    v_last bigint;
begin
    perform workflow._validate_name('channel', channel_last_id.channel);
    select c.queue_name into v_queue from workflow.channels c where c.channel = channel_last_id.channel;
    if v_queue is null then
        return 0;
    end if;
    execute format(
        'select greatest((select max(msg_id) from pgmq.%I), (select max(msg_id) from pgmq.%I))',
        'q_' || v_queue, 'a_' || v_queue
    ) into v_last;
    return coalesce(v_last, 0);
end;
$$;
