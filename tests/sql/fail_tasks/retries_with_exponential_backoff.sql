-- A failed attempt with attempts left is queued again, invisible for base_delay * 2^(attempt-1)
-- seconds measured from the injected clock: with base_delay 2 the retries wait 2 s then 4 s
-- (invisible just before, claimable at the deadline). The third failure is final.
begin;
\ir ../_helpers.psql
select plan(14);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.start_flow('retry') as run_id \gset
select task_id as t, attempt from workflow.claim_tasks('default', now => sw_test.t0()) \gset

select is(workflow.fail_task(:t, 1, 'boom 1', sw_test.at(10)), 'retry', 'attempt 1 fails: retry');
select results_eq(
    format('select status, attempts_count, error_message, worker_id from workflow.tasks where task_id = %s', :t),
    $$values ('queued', 1, 'boom 1', null::text)$$, 'the task is queued again with the error, no worker');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(11.9))), 0::bigint, 'not claimable 1.9 s later');
select results_eq(
    $$select task_id, attempt from workflow.claim_tasks('default', now => sw_test.at(12))$$,
    format('values (%s::bigint, 2)', :t), 'claimable 2 s later, as attempt 2');

select is(workflow.fail_task(:t, 2, 'boom 2', sw_test.at(20)), 'retry', 'attempt 2 fails: retry');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(23.9))), 0::bigint, 'not claimable 3.9 s later');
select results_eq(
    $$select task_id, attempt from workflow.claim_tasks('default', now => sw_test.at(24))$$,
    format('values (%s::bigint, 3)', :t), 'claimable 4 s later, as attempt 3');

select is(workflow.fail_task(:t, 3, 'boom 3', sw_test.at(30)), 'failed', 'attempt 3 of 3 fails for good');
select results_eq(
    format('select status, failed_step, failed_at, error_message like %L from workflow.runs where run_id = %L', '%boom 3%', :'run_id'),
    format($$values ('failed', 'only', %L::timestamptz, true)$$, sw_test.at(30)),
    'the run failed on the step with its last error');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing live is left for the run');

-- A zero base delay retries at once; a huge one is capped at a day.
select workflow.register_flow('{"slug": "now", "steps": [{"slug": "a", "execution": "distributed", "base_delay": 0}]}') \g /dev/null
select workflow.start_flow('now') as r0 \gset
select task_id as t0 from workflow.claim_tasks('default', now => sw_test.at(100)) \gset
select is(workflow.fail_task(:t0, 1, 'x', sw_test.at(100)), 'retry', 'base_delay 0: retry');
select is((select attempt from workflow.claim_tasks('default', now => sw_test.at(100))), 2, 'claimable at once');

select workflow.register_flow('{"slug": "slow", "steps": [{"slug": "a", "execution": "distributed", "base_delay": 1000000}]}') \g /dev/null
select workflow.start_flow('slow') as r1 \gset
select task_id as t1 from workflow.claim_tasks('default', for_run_id => :'r1', now => sw_test.at(200)) \gset
select is(workflow.fail_task(:t1, 1, 'x', sw_test.at(200)), 'retry', 'a huge base delay: retry');
select is(
    (select vt from pgmq.q_default where msg_id = (select message_id from workflow.tasks where task_id = :t1)),
    sw_test.at(200 + 86400), 'the delay is capped at one day');

select * from finish();
rollback;
