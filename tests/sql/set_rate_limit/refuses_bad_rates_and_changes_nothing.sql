-- A rate limit needs 1 to 10000 starts per a positive number of seconds (WF023), and the same
-- scope, name and key path as a concurrency limit (WF024 here); nothing is stored.
begin;
\ir ../_helpers.psql
select plan(7);

select sw_test.setup_flow('retry') \g /dev/null
select throws_ok($$select workflow.set_rate_limit('queue', 'default', 5, 0)$$, 'WF023', null, 'a zero window');
select throws_ok($$select workflow.set_rate_limit('queue', 'default', 5, -1)$$, 'WF023', null, 'a negative window');
select throws_ok($$select workflow.set_rate_limit('queue', 'default', 5, null)$$, 'WF023', null, 'no window');
select throws_ok($$select workflow.set_rate_limit('queue', 'default', 0, 1)$$, 'WF023', null, 'zero starts');
select throws_ok($$select workflow.set_rate_limit('queue', 'default', 10001, 1)$$, 'WF023', null, 'over 10000 starts');
select throws_ok($$select workflow.set_rate_limit('key', 'retry', 5, 1, 'a b')$$, 'WF024', null, 'a bad key path');
select is((select count(*) from workflow.limits), 0::bigint, 'nothing was stored');

select * from finish();
rollback;
