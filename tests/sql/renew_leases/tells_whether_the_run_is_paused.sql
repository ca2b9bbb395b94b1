-- renew_leases' run_paused tells the worker that the task's run is paused, so a handler's
-- context can read cancelled and stop early. The lease is still extended (a paused run's running tasks may
-- finish, their results are kept); resume clears the flag; an unknown task reads false.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.register_flow('{"slug": "p", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.register_flow('{"slug": "q", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('p') as paused_run \gset
select workflow.start_flow('q') as other_run \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select sw_test.task_id(:'paused_run', 'a') as pa, sw_test.task_id(:'other_run', 'a') as qa \gset

select results_eq(
    format('select extended, run_paused from workflow.renew_leases(array[%s, %s]::bigint[], array[1, 1], 30, sw_test.at(5))', :pa, :qa),
    $$values (true, false), (true, false)$$,
    'before the pause neither run is paused');

select workflow.pause_workflow_run(:'paused_run') \g /dev/null
select results_eq(
    format('select task_id, extended, run_paused from workflow.renew_leases(array[%s, %s, -1]::bigint[], array[1, 1, 1], 30, sw_test.at(10))', :pa, :qa),
    format('values (%s::bigint, true, true), (%s::bigint, true, false), (-1::bigint, false, false)', :pa, :qa),
    'the paused run''s task is still extended and flagged; the other run''s is not; an unknown task reads false');
select is(
    (select vt from pgmq.q_default where msg_id = (select message_id from workflow.tasks where task_id = :pa)),
    sw_test.at(40), 'the paused run''s lease was pushed back all the same');
select is(workflow.extend_lease(:pa, 1, 30, sw_test.at(11)), true,
    'extend_lease (boolean) still answers whether the lease was extended');

select workflow.resume_workflow_run(:'paused_run') \g /dev/null
select is(
    (select run_paused from workflow.renew_leases(array[:pa]::bigint[], array[1], 30, sw_test.at(12))),
    false, 'after resume the flag is clear again');

select * from finish();
rollback;
