-- Invariant 2 of docs/architecture.md: a completion is accepted once. The first call records the output, completes
-- the step and deletes the task's message; a second call with the same token reports
-- accepted = false and changes nothing.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one') as run_id \gset
select task_id as a, attempt from workflow.claim_tasks('default', now => sw_test.t0()) \gset

select results_eq(
    format($$select task_id, accepted from workflow.complete_tasks(array[%s::bigint], array[%s], array['{"v": 1}'::jsonb], sw_test.at(1))$$, :a, :attempt),
    format('values (%s::bigint, true)', :a), 'the first completion is accepted');
select results_eq(
    format('select status, output, completed_at from workflow.tasks where task_id = %s', :a),
    format($$values ('completed', '{"v": 1}'::jsonb, %L::timestamptz)$$, sw_test.at(1)),
    'the task is completed with its output at the injected time');
select is(sw_test.messages('default'), 0::bigint, 'its message is deleted');
select results_eq(
    format('select status, remaining_tasks, output from workflow.step_states where run_id = %L', :'run_id'),
    $$values ('completed', 0, '{"v": 1}'::jsonb)$$, 'the step completed with the task output');

select results_eq(
    format($$select task_id, accepted from workflow.complete_tasks(array[%s::bigint], array[%s], array['{"v": 2}'::jsonb], sw_test.at(2))$$, :a, :attempt),
    format('values (%s::bigint, false)', :a), 'the same completion again is not accepted');
select results_eq(
    format('select output, completed_at from workflow.tasks where task_id = %s', :a),
    format($$values ('{"v": 1}'::jsonb, %L::timestamptz)$$, sw_test.at(1)), 'and changes nothing');
select results_eq(
    format('select status, remaining_steps, output from workflow.runs where run_id = %L', :'run_id'),
    $$values ('completed', 0, '{"a": {"v": 1}}'::jsonb)$$, 'the run completed once, with the output');
select is(workflow.complete_task(:a, :attempt + 1, '3'), false, 'a token from the future is not accepted either');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing live is left for the run');

select * from finish();
rollback;
