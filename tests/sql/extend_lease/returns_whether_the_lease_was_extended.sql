-- extend_lease is extend_leases for one task: true while the attempt holds the task, false
-- once it does not; seconds below 1 is WF010.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one') as run_id \gset
select task_id as a from workflow.claim_tasks('default', now => sw_test.t0()) \gset

select is(workflow.extend_lease(:a, 1, 30, sw_test.at(10)), true, 'the current attempt is extended');
select is(workflow.extend_lease(:a, 2, 30, sw_test.at(10)), false, 'another attempt is not');
select throws_ok(format('select workflow.extend_lease(%s, 1, 0)', :a), 'WF010', null, 'seconds 0 is WF010');
select throws_ok(format('select workflow.extend_lease(%s, 1, null)', :a), 'WF010', null, 'seconds null is WF010');

select * from finish();
rollback;
