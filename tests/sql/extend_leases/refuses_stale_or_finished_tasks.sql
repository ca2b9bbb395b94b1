-- extended = false tells the worker to stop: its attempt was re-claimed after the lease ended,
-- the task is completed, waiting in backoff, or unknown. Such a call leaves the message's
-- visibility alone. seconds below 1 and arrays of different lengths are WF010.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed"}, {"slug": "c", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select sw_test.task_id(:'run_id', 'a') as a, sw_test.task_id(:'run_id', 'b') as b, sw_test.task_id(:'run_id', 'c') as c \gset

-- At t0 + 60 every lease has ended: all three are re-claimed as attempt 2 (a's new lease ends
-- at t0 + 120). The calls below quote a's old token, and b's and c's current ones.
select count(*) as n from workflow.claim_tasks('default', now => sw_test.at(60)) \gset
select is(workflow.extend_lease(:a, 1, 500, sw_test.at(61)), false, 'a stale attempt is not extended');
select is(
    (select vt from pgmq.q_default where msg_id = (select message_id from workflow.tasks where task_id = :a)),
    sw_test.at(120), 'and the new attempt''s lease is untouched');
-- b: completed.
select ok(workflow.complete_task(:b, sw_test.attempt(:b), '1', sw_test.at(62)), 'b completes');
select is(workflow.extend_lease(:b, sw_test.attempt(:b), 30, sw_test.at(63)), false, 'a completed task is not extended');
-- c: failed once, waiting in backoff.
select is(workflow.fail_task(:c, sw_test.attempt(:c), 'x', sw_test.at(64)), 'retry', 'c fails once');
select is(workflow.extend_lease(:c, sw_test.attempt(:c), 30, sw_test.at(64)), false, 'a task in backoff is not extended');
select is(workflow.extend_lease(-1, 1, 30), false, 'an unknown task is not extended');

select throws_ok(format('select * from workflow.extend_leases(array[%s]::bigint[], array[2], 0)', :a), 'WF010', null, 'seconds 0');
select throws_ok(format('select * from workflow.extend_leases(array[%s]::bigint[], array[2, 3], 30)', :a), 'WF010', null,
    'arrays of different lengths');

select * from finish();
rollback;
