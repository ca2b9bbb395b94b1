-- list_workers shows live workers (in id order); a worker whose heartbeat is older than its
-- timeout, or that stopped, is left out unless include_dead, where alive says which is which.
begin;
\ir ../_helpers.psql
select plan(3);

select workflow.register_worker('w2', heartbeat_timeout_seconds => 30, now => sw_test.t0()) \g /dev/null
select workflow.register_worker('w1', heartbeat_timeout_seconds => 30, now => sw_test.t0()) \g /dev/null
select workflow.register_worker('w3', heartbeat_timeout_seconds => 5, now => sw_test.t0()) \g /dev/null
select workflow.register_worker('w4', now => sw_test.t0()) \g /dev/null
select workflow.deregister_worker('w4', sw_test.at(1)) \g /dev/null

select results_eq($$select worker_id from workflow.list_workers(now => sw_test.at(4))$$,
    $$values ('w1'), ('w2'), ('w3')$$, 'live workers in id order');
select results_eq($$select worker_id from workflow.list_workers(now => sw_test.at(5))$$,
    $$values ('w1'), ('w2')$$, 'w3 is dead 5 s after its last heartbeat');
select results_eq($$select worker_id, alive from workflow.list_workers(true, sw_test.at(5))$$,
    $$values ('w1', true), ('w2', true), ('w3', false), ('w4', false)$$, 'include_dead lists all, with alive');

select * from finish();
rollback;
