-- A run's key is the concurrency_key given at start, else its input's value at the key path; a
-- run whose input lacks the path has the key '' (such runs share one allowance). A value that is
-- an object or an array at the path is refused at start (WF025) and nothing is created.
begin;
\ir ../_helpers.psql
select plan(5);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.set_concurrency_limit('key', 'retry', 1, 'account.id') \g /dev/null
select workflow.start_flow('retry', '{"account": {"id": 7}}') \g /dev/null
select workflow.start_flow('retry', '{"account": {"id": 8}}', concurrency_key => '7') \g /dev/null
select workflow.start_flow('retry', '{}') \g /dev/null
select workflow.start_flow('retry', '{"other": 1}') \g /dev/null

select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.t0())), 2::bigint,
    'one task of key 7 (from the input or given at start) and one of the runs without a key');
select results_eq(
    $$select key, in_use from workflow.list_limits()$$,
    $$values ('', 1::bigint), ('7', 1::bigint)$$, 'the keys in use');
select throws_ok($$select workflow.start_flow('retry', '{"account": {"id": [1]}}')$$, 'WF025', null,
    'an array at the key path is refused');
select throws_ok($$select workflow.start_flows('retry', array['{"account": {"id": 1}}', '{"account": {"id": {}}}']::jsonb[])$$,
    'WF025', null, 'an object at the key path is refused for the whole batch');
select lives_ok($$select workflow.start_flow('retry', '{"account": {"id": {}}}', concurrency_key => 'x')$$,
    'a key given at start needs no scalar in the input');

select * from finish();
rollback;
