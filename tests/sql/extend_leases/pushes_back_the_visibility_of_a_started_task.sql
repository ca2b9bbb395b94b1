-- A worker still running a task extends its lease: the message stays invisible until now +
-- seconds (measured from the injected clock), so the task is not re-claimed at the old lease
-- end but is at the new one. A batch may span queues; results come back in input order.
begin;
\ir ../_helpers.psql
select plan(6);

select workflow.register_flow('{"slug": "two", "steps": [
    {"slug": "x", "execution": "distributed"}, {"slug": "y", "execution": "distributed"}, {"slug": "z", "execution": "distributed", "queue": "other"}]}') \g /dev/null
select workflow.start_flow('two') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select count(*) as n from workflow.claim_tasks('other', now => sw_test.t0()) \gset
select sw_test.task_id(:'run_id', 'x') as x, sw_test.task_id(:'run_id', 'y') as y, sw_test.task_id(:'run_id', 'z') as z \gset

select results_eq(
    format('select task_id, extended from workflow.extend_leases(array[%s, %s]::bigint[], array[1, 1], 100, sw_test.at(50))', :z, :x),
    format('values (%s::bigint, true), (%s::bigint, true)', :z, :x),
    'x and z, on two queues, are extended');
select is(
    (select vt from pgmq.q_default where msg_id = (select message_id from workflow.tasks where task_id = :x)),
    sw_test.at(150), 'the message is invisible until now + seconds');
select results_eq(
    $$select step_slug, attempt from workflow.claim_tasks('default', now => sw_test.at(60))$$,
    $$values ('y', 2)$$, 'at the old lease end only the task not extended is re-claimed');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(149.9)) where step_slug = 'x'), 0::bigint,
    'x is not claimable before its new lease end');
select results_eq(
    $$select step_slug, attempt from workflow.claim_tasks('default', now => sw_test.at(150)) where step_slug = 'x'$$,
    $$values ('x', 2)$$, 'x is claimable at its new lease end');
select is(workflow.complete_task(:z, 1, '"z"', sw_test.at(151)), true, 'the extended attempt can still complete');

select * from finish();
rollback;
