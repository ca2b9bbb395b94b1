-- metrics reports, per queue and flow, the live tasks (ready, running) and over the window the
-- completions with their claim latency (queued -> first claim) and duration (claim -> completion).
-- Three chain3 runs start at t0; one task is claimed at t0+2 s and completed at t0+5 s (its
-- completion queues step b at t0+5 s); another is claimed at t0+4 s and still running.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) from generate_series(1, 3) \g /dev/null
select task_id as first from workflow.claim_tasks('default', 1, now => sw_test.at(2)) \gset
select workflow.complete_task(:first, 1, '{}', sw_test.at(5)) \g /dev/null
select task_id as second from workflow.claim_tasks('default', 1, now => sw_test.at(4)) \gset

select results_eq(
    $$select queue_name, flow_slug, ready, running, completed, failed
      from workflow.metrics(interval '1 minute', now => sw_test.at(10))$$,
    $$values ('default', 'chain3', 2::bigint, 1::bigint, 1::bigint, 0::bigint)$$,
    'one row for the queue and flow: 2 ready (a of run 3, b of run 1), 1 running, 1 completed');
select is((select claim_latency_p50_seconds from workflow.metrics(interval '1 minute', now => sw_test.at(10))),
    3::double precision, 'claim latency p50 over the two first claims (2 s and 4 s)');
select is((select duration_p50_seconds from workflow.metrics(interval '1 minute', now => sw_test.at(10))),
    3::double precision, 'duration of the completed attempt: 3 s');
select is((select oldest_ready_seconds from workflow.metrics(interval '1 minute', now => sw_test.at(10))),
    10::double precision, 'the oldest ready task has been claimable since t0');
select is((select completed from workflow.metrics(interval '4 seconds', now => sw_test.at(10))),
    0::bigint, 'a completion before the window is not counted');
select is((select count(*) from workflow.metrics(interval '1 minute', now => sw_test.t0() - interval '1 hour')),
    1::bigint, 'before anything happened the live tasks still show (now is about the queue)');
select throws_ok($$select * from workflow.metrics(interval '0 s')$$, 'WF010', null,
    'a window that is not positive is refused');
select throws_ok($$select * from workflow.metrics(interval '1 minute', interval '-1 s')$$, 'WF010', null,
    'a negative horizon is refused');

select * from finish();
rollback;
