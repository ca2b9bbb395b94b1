-- A failure reported as not retryable fails the task, its step and its run at once, without
-- spending the remaining attempts; a retryable one in the same batch is retried. Arrays of
-- another length are WF010.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.start_flow('retry') as r1 \gset
select workflow.start_flow('retry') as r2 \gset
select workflow.claim_tasks('default', now => sw_test.t0()) \g /dev/null
select sw_test.task_id(:'r1', 'only') as t1, sw_test.task_id(:'r2', 'only') as t2 \gset

select throws_ok(format('select * from workflow.fail_tasks(array[%s, %s], array[1, 1], array[%L, %L], retryable => array[false])',
    :t1, :t2, 'x', 'y'), 'WF010', null, 'retryable of another length is WF010');
select results_eq(
    format($$select task_id, outcome from workflow.fail_tasks(array[%s, %s], array[1, 1], array['bad input', 'flaky'],
        %L, array[false, true])$$, :t1, :t2, sw_test.at(1)),
    format($$values (%s::bigint, 'failed'), (%s::bigint, 'retry')$$, :t1, :t2),
    'not retryable: failed on attempt 1 of 3; retryable: retried');
select results_eq(format('select status, attempts_count from workflow.tasks where task_id = %s', :t1),
    $$values ('failed', 1)$$, 'the task failed with two attempts unspent');
select is((select status from workflow.runs where run_id = :'r1'), 'failed', 'and its run failed');
select is((select error_message from workflow.tasks where task_id = :t1), 'bad input', 'with the error');
select is(workflow.fail_task(:t2, 1, 'again', sw_test.at(2), retryable => false), 'stale',
    'fail_task takes retryable too (a stale token is still stale)');

select * from finish();
rollback;
