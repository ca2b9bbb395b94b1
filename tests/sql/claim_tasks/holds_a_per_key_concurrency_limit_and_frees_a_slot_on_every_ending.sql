-- A key limit of 2 on flow retry (key: input tenant_id): a claim starts at most 2 tasks of one
-- tenant, the others wait (visible again 1 s later) while another tenant's task starts. Each way a
-- task ends frees its slot for the next claim: completion, a failure (retried later), a cancel of
-- its run; a task whose lease expired keeps its slot and, claimed again, reuses it.
begin;
\ir ../_helpers.psql
select plan(10);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.set_concurrency_limit('key', 'retry', 2, 'tenant_id') \g /dev/null
select workflow.start_flow('retry', '{"tenant_id": "a", "n": 1}') as a1 \gset
select workflow.start_flow('retry', '{"tenant_id": "a", "n": 2}') as a2 \gset
select workflow.start_flow('retry', '{"tenant_id": "a", "n": 3}') as a3 \gset
select workflow.start_flow('retry', '{"tenant_id": "a", "n": 4}') as a4 \gset
select workflow.start_flow('retry', '{"tenant_id": "b"}') as b1 \gset

select results_eq(
    $$select run_id from workflow.claim_tasks('default', 10, now => sw_test.t0()) order by task_id$$,
    format($$values (%L::uuid), (%L::uuid), (%L::uuid)$$, :'a1', :'a2', :'b1'),
    'two tasks of tenant a and the one of tenant b start; a3 and a4 wait');
select is(sw_test.messages('default', sw_test.t0()), 0::bigint, 'the waiting ones are not visible at once');
select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(2))), 0::bigint,
    'a second later they are, and still cannot start');
select results_eq(
    $$select key, max_count, in_use from workflow.list_limits()$$,
    $$values ('a', 2, 2::bigint), ('b', 2, 1::bigint)$$, 'list_limits shows the use per key');

-- completion frees a slot
select sw_test.complete(sw_test.task_id(:'a1', 'only'), '{}') \g /dev/null
select results_eq(
    $$select run_id from workflow.claim_tasks('default', 10, now => sw_test.at(4))$$,
    format($$values (%L::uuid)$$, :'a3'), 'after a completion the next task of a starts, one only');

-- a failure (to be retried) frees a slot
select workflow.fail_task(sw_test.task_id(:'a2', 'only'), sw_test.attempt(sw_test.task_id(:'a2', 'only')), 'boom',
    now => sw_test.at(5)) \g /dev/null
select results_eq(
    $$select run_id from workflow.claim_tasks('default', 10, now => sw_test.at(6))$$,
    format($$values (%L::uuid)$$, :'a4'), 'after a failure the next task of a starts');

-- a cancel frees a slot; the failed task's retry then gets it
select workflow.cancel_workflow_run(:'a3', now => sw_test.at(7)) \g /dev/null
select results_eq(
    $$select run_id, attempt from workflow.claim_tasks('default', 10, now => sw_test.at(10))$$,
    format($$values (%L::uuid, 2)$$, :'a2'), 'after a cancel the retry of the failed task starts');

-- a lease that expired keeps its slot; the task claimed again reuses it (without that, the two
-- expired tasks would count against tenant a and neither could start again)
select results_eq(
    $$select run_id, attempt from workflow.claim_tasks('default', 10, now => sw_test.at(100)) order by task_id$$,
    format($$values (%L::uuid, 3), (%L::uuid, 2), (%L::uuid, 2)$$, :'a2', :'a4', :'b1'),
    'expired leases are claimed again as the next attempt, each in its own slot');
select is((select in_use from workflow.list_limits() where key = 'a'), 2::bigint, 'tenant a still uses 2');

-- lowering the limit cancels nothing; raising it takes effect on the next claim
select workflow.set_concurrency_limit('key', 'retry', 1, 'tenant_id') \g /dev/null
select is((select count(*) from workflow.tasks where status = 'started'), 3::bigint,
    'lowering the limit below the use cancels no running task');

select * from finish();
rollback;
