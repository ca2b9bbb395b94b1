-- Bad limits are refused with their codes: WF023 a limit below 1 or an unknown scope, WF024 a
-- key path missing, malformed or on another scope, WF002 an unknown flow, WF026 an unknown step,
-- WF001 a malformed queue; nothing is stored. A repeated call updates the limit.
begin;
\ir ../_helpers.psql
select plan(11);

select sw_test.setup_flow('retry') \g /dev/null
select throws_ok($$select workflow.set_concurrency_limit('queue', 'default', 0)$$, 'WF023', null, 'limit 0');
select throws_ok($$select workflow.set_concurrency_limit('queue', 'default', -3)$$, 'WF023', null, 'a negative limit');
select throws_ok($$select workflow.set_concurrency_limit('tenant', 'default', 3)$$, 'WF023', null, 'an unknown scope');
select throws_ok($$select workflow.set_concurrency_limit('key', 'retry', 3)$$, 'WF024', null, 'a key limit without path');
select throws_ok($$select workflow.set_concurrency_limit('key', 'retry', 3, 'a..b')$$, 'WF024', null, 'a malformed path');
select throws_ok($$select workflow.set_concurrency_limit('queue', 'default', 3, 'a')$$, 'WF024', null, 'a path on a queue limit');
select throws_ok($$select workflow.set_concurrency_limit('flow', 'nope', 3)$$, 'WF002', null, 'an unknown flow');
select throws_ok($$select workflow.set_concurrency_limit('step', 'retry.nope', 3)$$, 'WF026', null, 'an unknown step');
select throws_ok($$select workflow.set_concurrency_limit('queue', 'Bad Queue', 3)$$, 'WF001', null, 'a malformed queue');
select is((select count(*) from workflow.limits), 0::bigint, 'nothing was stored');
select workflow.set_concurrency_limit('step', 'retry.only', 3) \g /dev/null
select is((workflow.set_concurrency_limit('step', 'retry.only', 5)).max_count, 5, 'a repeated call updates the limit');

select * from finish();
rollback;
