-- prune_archives deletes archived messages (acknowledged channel messages, task-queue messages
-- archived by a pgmq client) whose archived_at is older than the interval, up to batch_size per
-- queue per call; live messages and newer archives stay, and read_channel no longer shows the
-- pruned history.
begin;
\ir ../_helpers.psql
select plan(6);

select workflow.send_with_notify('audit', jsonb_build_object('n', i)) from generate_series(1, 5) as i \g /dev/null
select workflow.ack_message('audit', m) from generate_series(1, 4) as m \g /dev/null
select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3') \g /dev/null
select pgmq.archive('default', (select max(msg_id) from pgmq.q_default)) \g /dev/null
-- archived_at is the real clock: age the first three acknowledgements by an hour
update pgmq.a_wfch_audit set archived_at = archived_at - interval '1 hour' where msg_id <= 3;
update pgmq.a_default set archived_at = archived_at - interval '1 hour';

select is(workflow.prune_archives('1 minute', 2), 2 + 1, 'one call: 2 of audit''s 3 old archives, and the default queue''s one');
select is(workflow.prune_archives('1 minute', 2), 1, 'the next call: the third old one');
select is(workflow.prune_archives('1 minute', 2), 0, 'then none');
select is((select array_agg(msg_id order by msg_id) from pgmq.a_wfch_audit), array[4::bigint],
    'the recent acknowledgement stays archived');
select is((select array_agg(msg_id order by msg_id) from pgmq.q_wfch_audit), array[5::bigint],
    'the unacknowledged message is untouched');
select is((select array_agg(message_id order by message_id) from workflow.read_channel('audit')), array[4::bigint, 5],
    'history now starts after the pruned messages');

select * from finish();
rollback;
