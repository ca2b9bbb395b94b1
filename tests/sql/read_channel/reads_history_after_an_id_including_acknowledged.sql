-- read_channel returns a channel's messages after a given id, in id order, from the live queue
-- and the archive (acknowledged messages stay in history, flagged); max_messages pages it; a
-- channel never used has no history; out-of-range pages are WF010.
begin;
\ir ../_helpers.psql
select plan(7);

select workflow.send_with_notify('log', jsonb_build_object('n', g)) from generate_series(1, 5) as g \g /dev/null
select min(msg_id) as first_id from pgmq.q_wfch_log \gset
select workflow.ack_message('log', :first_id) \g /dev/null

select is((select array_agg((message ->> 'n')::int order by message_id) from workflow.read_channel('log')),
    array[1, 2, 3, 4, 5], 'all five, in order');
select is((select acknowledged from workflow.read_channel('log') where message_id = :first_id), true,
    'the acknowledged one is flagged and still in history');
select is((select array_agg((message ->> 'n')::int order by message_id) from workflow.read_channel('log', after_id => :first_id + 2)),
    array[4, 5], 'after an id: only the later ones');
select is((select count(*) from workflow.read_channel('log', max_messages => 2)), 2::bigint, 'max_messages pages the history');
select is((select count(*) from workflow.read_channel('never_used')), 0::bigint, 'an unused channel has no history');
select throws_ok($$select * from workflow.read_channel('log', max_messages => 0)$$, 'WF010', null, 'max_messages 0 is WF010');
select throws_ok($$select * from workflow.read_channel('log', max_messages => 1001)$$, 'WF010', null, 'max_messages over 1000 is WF010');

select * from finish();
rollback;
