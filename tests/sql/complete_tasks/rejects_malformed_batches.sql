-- A batch whose arrays differ in length, or that names a task twice, is WF010 and changes
-- nothing (a task twice would otherwise be counted twice).
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one') as run_id \gset
select task_id as a from workflow.claim_tasks('default', now => sw_test.t0()) \gset

select throws_ok(format('select * from workflow.complete_tasks(array[%s]::bigint[], array[1, 1], array[%L]::jsonb[])', :a, '1'),
    'WF010', null, 'fewer ids than attempts');
select throws_ok(format('select * from workflow.complete_tasks(array[%s]::bigint[], array[1], array[%L, %L]::jsonb[])', :a, '1', '2'),
    'WF010', null, 'more outputs than ids');
select throws_ok(format('select * from workflow.complete_tasks(array[%s, %s]::bigint[], array[1, 1], array[%L, %L]::jsonb[])', :a, :a, '1', '2'),
    'WF010', null, 'a task id twice');
select is((select status from workflow.tasks where task_id = :a), 'started', 'the task is still started');
select is(workflow.complete_task(:a, 1), true, 'and completes normally afterwards');

select * from finish();
rollback;
