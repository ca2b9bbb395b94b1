-- qty caps the batch (oldest messages first); the rest stay for the next claim. qty outside
-- 1..1000 is WF010.
begin;
\ir ../_helpers.psql
select plan(7);

select sw_test.setup_flow('root_map') \g /dev/null
select workflow.start_flow('root_map', '[0, 1, 2, 3, 4]') as run_id \gset

select results_eq(
    $$select task_index from workflow.claim_tasks('default', 2, now => sw_test.t0())$$,
    $$values (0), (1)$$, 'qty 2 claims the first two tasks');
select results_eq(
    $$select task_index from workflow.claim_tasks('default', 10, now => sw_test.t0())$$,
    $$values (2), (3), (4)$$, 'a larger qty claims what is left');
select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.t0())), 0::bigint, 'then nothing');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and status = 'started'), 5::bigint,
    'each task was claimed once');
select throws_ok($$select * from workflow.claim_tasks('default', 0)$$, 'WF010', null, 'qty 0');
select throws_ok($$select * from workflow.claim_tasks('default', 1001)$$, 'WF010', null, 'qty 1001');
select throws_ok($$select * from workflow.claim_tasks('default', null)$$, 'WF010', null, 'qty null');

select * from finish();
rollback;
