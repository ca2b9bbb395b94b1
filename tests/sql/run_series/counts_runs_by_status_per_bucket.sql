-- run_series counts, per bucket of the window, the runs started and those that completed,
-- failed or were cancelled in it. Three one-step runs start at t0+1 s; one completes at t0+20 s,
-- one fails for good at t0+35 s, one is cancelled at t0+50 s; the window is t0..t0+60 s in 4
-- buckets of 15 s.
begin;
\ir ../_helpers.psql
select plan(2);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.start_flow('retry', now => sw_test.at(1)) as r1 \gset
select workflow.start_flow('retry', now => sw_test.at(1)) as r2 \gset
select workflow.start_flow('retry', now => sw_test.at(1)) as r3 \gset
select task_id as t1 from workflow.claim_tasks('default', 1, for_run_id => :'r1', now => sw_test.at(5)) \gset
select workflow.complete_task(:t1, 1, '{}', sw_test.at(20)) \g /dev/null
select task_id as t2 from workflow.claim_tasks('default', 1, for_run_id => :'r2', now => sw_test.at(30)) \gset
select workflow.fail_task(:t2, 1, 'boom', sw_test.at(35), retryable => false) \g /dev/null
select workflow.cancel_workflow_run(:'r3', 'stop', now => sw_test.at(50)) \g /dev/null

select results_eq(
    $$select bucket_start, started, completed, failed, cancelled
      from workflow.run_series(interval '60 s', 4, now => sw_test.at(60))$$,
    $$values (sw_test.at(0), 3::bigint, 0::bigint, 0::bigint, 0::bigint),
             (sw_test.at(15), 0::bigint, 1::bigint, 0::bigint, 0::bigint),
             (sw_test.at(30), 0::bigint, 0::bigint, 1::bigint, 0::bigint),
             (sw_test.at(45), 0::bigint, 0::bigint, 0::bigint, 1::bigint)$$,
    'started, completed, failed and cancelled runs in their buckets');
select throws_ok($$select * from workflow.run_series(interval '1 hour', 1001)$$, 'WF010', null,
    'a bucket_count above 1000 is refused');

select * from finish();
rollback;
