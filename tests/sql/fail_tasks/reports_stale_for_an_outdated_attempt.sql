-- A failure report whose token does not match a started task (a re-claimed task's old attempt,
-- a completed task, an unknown id) is 'stale' and changes nothing; in a batch the others still
-- count. Arrays of different lengths or a task twice are WF010.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.start_flow('retry') as run_id \gset
select task_id as t from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.at(60)) \gset

select is(sw_test.attempt(:t), 2, 'the task was re-claimed as attempt 2');
select is(workflow.fail_task(:t, 1, 'old worker', sw_test.at(61)), 'stale', 'attempt 1''s failure is stale');
select results_eq(
    format('select status, attempts_count, error_message from workflow.tasks where task_id = %s', :t),
    $$values ('started', 2, null::text)$$, 'and changes nothing');
select results_eq(
    format($$select task_id, outcome from workflow.fail_tasks(array[-1, %s]::bigint[], array[1, 2], array['x', 'y'], sw_test.at(62))$$, :t),
    format($$values (-1::bigint, 'stale'), (%s::bigint, 'retry')$$, :t),
    'in a batch, an unknown id is stale and the current attempt retries');

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one') as r2 \gset
select task_id as c from workflow.claim_tasks('default', now => sw_test.at(1000)) where run_id = :'r2' \gset
select ok(workflow.complete_task(:c, 1), 'another task completes');
select is(workflow.fail_task(:c, 1, 'too late'), 'stale', 'a failure after the completion is stale');

select throws_ok(format('select * from workflow.fail_tasks(array[%s]::bigint[], array[1, 2], array[%L])', :t, 'e'),
    'WF010', null, 'arrays of different lengths');
select throws_ok(format('select * from workflow.fail_tasks(array[%s, %s]::bigint[], array[2, 2], array[%L, %L])', :t, :t, 'e', 'e'),
    'WF010', null, 'a task twice');

select * from finish();
rollback;
