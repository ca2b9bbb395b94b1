-- send_with_notify stores the message in the channel's pgmq queue (created on first use and
-- recorded in workflow.channels), notifies the channel with the message id in the same
-- transaction and returns that id; ids increase; bad channel names and null messages are
-- rejected with their codes and change nothing.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.send_with_notify('orders', '{"n": 1}') as first_id \gset
select workflow.send_with_notify('orders', '[1, 2]') as second_id \gset

select ok(:first_id::bigint > 0, 'it returns a message id');
select ok(:second_id::bigint > :first_id::bigint, 'ids increase on a channel');
select is((select queue_name from workflow.channels where channel = 'orders'), 'wfch_orders',
    'the channel is recorded with its queue');
select is((select count(*) from pgmq.meta where queue_name = 'wfch_orders'), 1::bigint, 'its pgmq queue exists');
select is((select message from pgmq.q_wfch_orders where msg_id = :first_id), '{"n": 1}'::jsonb,
    'the message is persisted as given');
select is((select count(*) from pg_catalog.pg_listening_channels()), 0::bigint, 'sending does not listen');
select throws_ok($$select workflow.send_with_notify('Bad-Name', '{}')$$, 'WF001', null, 'an invalid channel name is WF001');
select throws_ok($$select workflow.send_with_notify('workflow_run_events', '{}')$$, 'WF001', null,
    'the engine''s own channels are reserved');
select throws_ok($$select workflow.send_with_notify('orders', null)$$, 'WF009', null, 'a null message is WF009');

select * from finish();
rollback;
