-- Queue, flow and step limits count every started task of their scope, whoever claimed it; a
-- task under two limits starts only within both. Without a limit on the queue's work the claim
-- is unchanged; removing a limit lifts it on the next claim.
begin;
\ir ../_helpers.psql
select plan(7);

select sw_test.setup_flow('root_map') \g /dev/null
select sw_test.setup_flow('gpu') \g /dev/null
select workflow.start_flow('root_map', '[0, 1, 2, 3, 4, 5]') as run_id \gset

select workflow.set_concurrency_limit('step', 'root_map.each', 4) \g /dev/null
select workflow.set_concurrency_limit('queue', 'default', 3) \g /dev/null
select results_eq(
    $$select task_index from workflow.claim_tasks('default', 2, now => sw_test.t0())$$,
    $$values (0), (1)$$, 'qty still caps the batch');
select results_eq(
    $$select task_index from workflow.claim_tasks('default', 10, now => sw_test.t0())$$,
    $$values (2)$$, 'the queue limit of 3 stops the fourth start');
select workflow.set_concurrency_limit('queue', 'default', 10) \g /dev/null
select results_eq(
    $$select task_index from workflow.claim_tasks('default', 10, now => sw_test.at(2))$$,
    $$values (3)$$, 'raised, the queue limit lets the step limit of 4 decide, on the next claim');
select is(workflow.remove_limit('concurrency', 'step', 'root_map.each'), true, 'a limit is removed');
select is(workflow.remove_limit('concurrency', 'step', 'root_map.each'), false, 'removing it again is a no-op');
select results_eq(
    $$select task_index from workflow.claim_tasks('default', 10, now => sw_test.at(4))$$,
    $$values (4), (5)$$, 'without the step limit the rest starts');

-- a flow limit on gpu leaves another flow's queue work alone
select workflow.set_concurrency_limit('flow', 'gpu', 1) \g /dev/null
select workflow.start_flow('gpu', '{}') \g /dev/null
select is((select count(*) from workflow.claim_tasks('default', 10, resources => '{gpu}', now => sw_test.at(6))), 1::bigint,
    'the flow limit of 1 starts one of its two root tasks');

select * from finish();
rollback;
