-- A worker whose heartbeat is older than its timeout is dead: the next engine call (here a
-- claim, through the throttled sweep) releases its tasks at once, long before their lease ends,
-- and they are claimed as the next attempt; the worker is gone from the live list. The release
-- happens once. Throttle: a second claim within a second does not sweep again.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3') as run_id \gset
select workflow.register_worker('w1', heartbeat_timeout_seconds => 10, now => sw_test.t0()) \g /dev/null
select workflow.register_worker('w2', heartbeat_timeout_seconds => 60, now => sw_test.t0()) \g /dev/null
select task_id as a from workflow.claim_tasks('default', worker_id => 'w1', now => sw_test.t0()) \gset

select is((select count(*) from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(9))), 0::bigint,
    'while w1 lives its task stays leased');
-- Within a second of that claim's sweep: not swept again, so w1's task is still held.
select is((select count(*) from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(9.5))), 0::bigint,
    'a call within the second after a sweep does not sweep');
select results_eq(
    $$select task_id, attempt from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(11))$$,
    format('values (%s::bigint, 2)', :a), 'w1 dead (10 s without heartbeat): its task is claimed at once as attempt 2');
select is((select worker_id from workflow.tasks where task_id = :a), 'w2', 'now held by w2');
select results_eq($$select worker_id from workflow.list_workers(now => sw_test.at(11))$$, $$values ('w2')$$,
    'w1 is gone from the live list');
select is((workflow.maintain(sw_test.at(20)) ->> 'released_tasks')::integer, 0, 'a later sweep releases nothing again');

select * from finish();
rollback;
