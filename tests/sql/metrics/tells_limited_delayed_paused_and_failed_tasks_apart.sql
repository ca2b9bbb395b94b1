-- Queued tasks are ready, waiting on a full limit, delayed (retry backoff) or paused (their run
-- is paused); a task that failed for good counts as failed, a retried attempt does not, and the
-- tasks a failed run's sweep ends count as failed on their own queues.
begin;
\ir ../_helpers.psql
select plan(4);

-- A flow limited to one task at a time: one claimed, the other waits on the limit.
select sw_test.setup_flow('chain3') \g /dev/null
select workflow.set_concurrency_limit('flow', 'chain3', 1) \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) from generate_series(1, 2) \g /dev/null
select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(1)) \g /dev/null

-- A retried attempt: failed at t0+1 s with a 2 s backoff, so invisible at t0+2 s.
select sw_test.setup_flow('retry') \g /dev/null
select workflow.start_flow('retry', now => sw_test.t0()) as retry_run \gset
select task_id as retry_task from workflow.claim_tasks('default', 1, for_run_id => :'retry_run', now => sw_test.at(1)) \gset
select workflow.fail_task(:retry_task, 1, 'boom', sw_test.at(1)) \g /dev/null

-- A paused run, and a task that fails for good (boom has one attempt) on queue default.
select sw_test.setup_flow('gpu') \g /dev/null
select workflow.start_flow('gpu', now => sw_test.t0()) as gpu_run \gset
select workflow.pause_workflow_run(:'gpu_run', sw_test.at(1)) \g /dev/null
select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide', now => sw_test.t0()) as wide_run \gset
select task_id as boom from workflow.claim_tasks('default', 1, for_run_id => :'wide_run', now => sw_test.at(1)) \gset
select workflow.fail_task(:boom, 1, 'boom', sw_test.at(1)) \g /dev/null

select results_eq(
    $$select ready, waiting_on_limits, delayed, paused, running
      from workflow.metrics(now => sw_test.at(2)) where flow_slug = 'chain3'$$,
    $$values (0::bigint, 1::bigint, 0::bigint, 0::bigint, 1::bigint)$$,
    'under a full limit: one running, one waiting on the limit');
select results_eq(
    $$select ready, delayed, failed from workflow.metrics(now => sw_test.at(2)) where flow_slug = 'retry'$$,
    $$values (0::bigint, 1::bigint, 0::bigint)$$,
    'a retry in its backoff is delayed, and its failed attempt is not a failure');
select results_eq(
    $$select ready, paused from workflow.metrics(now => sw_test.at(2)) where flow_slug = 'gpu'$$,
    $$values (0::bigint, 2::bigint)$$,
    'the tasks of a paused run are paused, not ready');
select results_eq(
    $$select queue_name, failed from workflow.metrics(now => sw_test.at(2)) where flow_slug = 'wide'$$,
    $$values ('default', 2::bigint), ('other', 1::bigint)$$,
    'boom failed for good, and the sweep of its run failed ok1 (default) and ok2 (other)');

select * from finish();
rollback;
