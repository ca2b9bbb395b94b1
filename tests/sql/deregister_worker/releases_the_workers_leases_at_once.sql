-- deregister_worker releases the tasks the worker holds at once: another worker claims them
-- long before their lease would end, as the next attempt, and the first worker's token is stale.
-- A repeat releases nothing.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3') as run_id \gset
select workflow.register_worker('w1', now => sw_test.t0()) \g /dev/null
select task_id as a from workflow.claim_tasks('default', worker_id => 'w1', now => sw_test.t0()) \gset

select is((select count(*) from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(2))), 0::bigint,
    'leased: nobody else claims it');
select is(workflow.deregister_worker('w1', sw_test.at(3)), 1, 'deregistering releases its one task');
select results_eq(
    $$select task_id, attempt from workflow.claim_tasks('default', worker_id => 'w2', now => sw_test.at(3))$$,
    format('values (%s::bigint, 2)', :a), 'another worker claims it at once, as attempt 2');
select is(workflow.complete_task(:a, 1, '"late"', sw_test.at(4)), false, 'the first worker''s token is stale');
select is(workflow.deregister_worker('w1', sw_test.at(5)), 0, 'a repeat releases nothing');
select is((select stopped_at from workflow.workers where worker_id = 'w1'), sw_test.at(3), 'stopped when first deregistered');

select * from finish();
rollback;
