-- ack_message moves a live message to the channel's archive and returns true; a repeat, an
-- unknown id or an unused channel return false and change nothing.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.send_with_notify('jobs', '{"x": 1}') as id \gset
select is(workflow.ack_message('jobs', :id), true, 'a live message is acknowledged');
select is((select count(*) from pgmq.a_wfch_jobs where msg_id = :id), 1::bigint, 'it is in the archive');
select is(workflow.ack_message('jobs', :id), false, 'acknowledging it again is a no-op');
select is(workflow.ack_message('jobs', 999999), false, 'an unknown id is a no-op');
select is(workflow.ack_message('nothing_here', 1), false, 'an unused channel is a no-op');

select * from finish();
rollback;
