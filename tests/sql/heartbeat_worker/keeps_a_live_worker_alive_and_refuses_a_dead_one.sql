-- heartbeat_worker moves a live worker's heartbeat and returns true; for a worker whose
-- heartbeat is older than its timeout, a stopped one or an unknown id it returns false and
-- changes nothing (the worker must register again).
begin;
\ir ../_helpers.psql
select plan(6);

select workflow.register_worker('w1', heartbeat_timeout_seconds => 10, now => sw_test.t0()) \g /dev/null
select is(workflow.heartbeat_worker('w1', sw_test.at(9)), true, 'a heartbeat within the timeout: true');
select is((select heartbeat_at from workflow.workers), sw_test.at(9), 'the heartbeat moved');
select is(workflow.heartbeat_worker('w1', sw_test.at(19)), false, 'a heartbeat 10 s after the last: dead, false');
select is((select heartbeat_at from workflow.workers), sw_test.at(9), 'and the heartbeat did not move');
select is(workflow.heartbeat_worker('nobody', sw_test.at(1)), false, 'an unknown worker: false');
select workflow.register_worker('w2', now => sw_test.t0()) \g /dev/null
select workflow.deregister_worker('w2', sw_test.at(1)) \g /dev/null
select is(workflow.heartbeat_worker('w2', sw_test.at(2)), false, 'a deregistered worker: false');

select * from finish();
rollback;
