-- A dead worker does not leak a slot: with a key limit of 1, the task of a worker that died is
-- released by the sweep and claimed again in the slot it held, while the key's other task keeps
-- waiting; when it completes, the other starts. A limit declared while tasks run counts them.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.start_flow('retry', '{"tenant": "a", "n": 1}') as a1 \gset
select workflow.start_flow('retry', '{"tenant": "a", "n": 2}') as a2 \gset
select workflow.register_worker('w1', heartbeat_timeout_seconds => 10, now => sw_test.t0()) \g /dev/null
select workflow.claim_tasks('default', 1, worker_id => 'w1', now => sw_test.t0()) \g /dev/null
-- declared while a1 runs: a1 counts, so a2 cannot start
select workflow.set_concurrency_limit('key', 'retry', 1, 'tenant') \g /dev/null
select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(5))), 0::bigint,
    'a new limit counts the task already running');

select results_eq(
    $$select run_id, attempt from workflow.claim_tasks('default', 10, now => sw_test.at(11))$$,
    format($$values (%L::uuid, 2)$$, :'a1'),
    'w1 dead: its task is released and claimed again in its own slot; a2 still waits');
select is((select in_use from workflow.list_limits() where key = 'a'), 1::bigint, 'the key uses one slot');
select sw_test.complete(sw_test.task_id(:'a1', 'only'), '{}', sw_test.at(12)) \g /dev/null
select results_eq($$select run_id from workflow.claim_tasks('default', 10, now => sw_test.at(13))$$,
    format($$values (%L::uuid)$$, :'a2'), 'after its completion the other task starts');

select * from finish();
rollback;
