-- A failure on the last attempt fails the task, its step and its run, with the error and the
-- failing step recorded and the injected time; the steps that waited on it never start.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide') as run_id \gset
select task_id as boom, attempt from workflow.claim_tasks('default', 1, now => sw_test.t0()) \gset

select results_eq(
    format($$select task_id, outcome from workflow.fail_tasks(array[%s]::bigint[], array[%s], array['disk full'], sw_test.at(5))$$, :boom, :attempt),
    format($$values (%s::bigint, 'failed')$$, :boom), 'the outcome is failed');
select results_eq(
    format('select status, error_message, failed_at from workflow.tasks where task_id = %s', :boom),
    format($$values ('failed', 'disk full', %L::timestamptz)$$, sw_test.at(5)), 'the task failed with its error');
select results_eq(
    format('select status, error_message ~ %L, failed_at from workflow.step_states where run_id = %L and step_slug = %L', 'disk full', :'run_id', 'boom'),
    format($$values ('failed', true, %L::timestamptz)$$, sw_test.at(5)), 'the step failed with the error');
select results_eq(
    format('select status, failed_step, error_message ~ %L, failed_at, output from workflow.runs where run_id = %L', 'disk full', :'run_id'),
    format($$values ('failed', 'boom', true, %L::timestamptz, null::jsonb)$$, sw_test.at(5)),
    'the run failed on boom with the error');
select results_eq(
    format('select status, remaining_deps from workflow.step_states where run_id = %L and step_slug = %L', :'run_id', 'never'),
    $$values ('created', 3)$$, 'the dependent step never started');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'never'), 0::bigint, 'and has no task');

select * from finish();
rollback;
