-- notify_only sends a NOTIFY without storing anything; a payload of 8,000 bytes or more gets the
-- project's WF014 instead of the server's error, and a bad channel name WF001.
begin;
\ir ../_helpers.psql
select plan(5);

select lives_ok($$select workflow.notify_only('ui_updates', 'hello')$$, 'a small payload is sent');
select lives_ok($$select workflow.notify_only('ui_updates', repeat('x', 7999))$$, '7,999 bytes is the largest allowed');
select throws_ok($$select workflow.notify_only('ui_updates', repeat('x', 8000))$$, 'WF014', null, '8,000 bytes is WF014');
select throws_ok($$select workflow.notify_only('ui updates', 'x')$$, 'WF001', null, 'an invalid channel name is WF001');
select is((select count(*) from workflow.channels where channel = 'ui_updates'), 0::bigint, 'nothing is stored');

select * from finish();
rollback;
