-- metrics_series cuts the window into equal buckets, (start + k * width, start + (k + 1) * width],
-- and per queue counts claims, completions and failures in each, the depth (ready, not yet
-- claimed) at each bucket's end and the claim latency of the first claims in it. Two chain3 runs
-- start at t0+1 s; one task is claimed at t0+15 s and completed at t0+25 s (which queues step
-- b); the window is t0..t0+60 s in 4 buckets of 15 s.
begin;
\ir ../_helpers.psql
select plan(5);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.at(1)) from generate_series(1, 2) \g /dev/null
select task_id as first from workflow.claim_tasks('default', 1, now => sw_test.at(15)) \gset
select workflow.complete_task(:first, 1, '{}', sw_test.at(25)) \g /dev/null

select results_eq(
    $$select bucket_start, queue_name, claimed, completed, failed, depth
      from workflow.metrics_series(interval '60 s', 4, now => sw_test.at(60))$$,
    $$values (sw_test.at(0), 'default', 1::bigint, 0::bigint, 0::bigint, 1::bigint),
             (sw_test.at(15), 'default', 0::bigint, 1::bigint, 0::bigint, 2::bigint),
             (sw_test.at(30), 'default', 0::bigint, 0::bigint, 0::bigint, 2::bigint),
             (sw_test.at(45), 'default', 0::bigint, 0::bigint, 0::bigint, 2::bigint)$$,
    'claims and completions in their buckets; depth 2 ready - 1 claimed, then + b');
select is(
    (select claim_latency_p50_seconds from workflow.metrics_series(interval '60 s', 4, now => sw_test.at(60))
     where bucket_start = sw_test.at(0)),
    14::double precision, 'the claim latency of the bucket''s first claim: 14 s');
select is(
    (select count(*) from workflow.metrics_series(interval '60 s', 4, now => sw_test.at(60))
     where claim_latency_p50_seconds is null),
    3::bigint, 'buckets without a first claim have no latency');
select throws_ok($$select * from workflow.metrics_series(interval '1 hour', 0)$$, 'WF010', null,
    'a bucket_count below 1 is refused');
select throws_ok($$select * from workflow.metrics_series(interval '-1 hour')$$, 'WF010', null,
    'a window that is not positive is refused');

select * from finish();
rollback;
