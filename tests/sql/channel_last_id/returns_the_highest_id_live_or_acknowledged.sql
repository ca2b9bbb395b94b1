-- channel_last_id is the highest id a channel has had, whether the message is live or
-- acknowledged; 0 for a channel never used; WF001 for an invalid name.
begin;
\ir ../_helpers.psql
select plan(4);

select is(workflow.channel_last_id('tail'), 0::bigint, 'an unused channel starts at 0');
select workflow.send_with_notify('tail', '1') as a \gset
select workflow.send_with_notify('tail', '2') as b \gset
select is(workflow.channel_last_id('tail'), :b::bigint, 'the newest id');
select workflow.ack_message('tail', :b) \g /dev/null
select is(workflow.channel_last_id('tail'), :b::bigint, 'still the newest once acknowledged');
select throws_ok($$select workflow.channel_last_id('no-dashes')$$, 'WF001', null, 'an invalid name is WF001');

select * from finish();
rollback;
