-- Cancelling a run that already ended is WF013 unless force: a completed run is then marked
-- failed and cancelled. Cancelling a cancelled run again changes nothing. Unknown run: WF011.
begin;
\ir ../_helpers.psql
select plan(8);

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one', now => sw_test.t0()) as done_run \gset
select sw_test.drain('default') \g /dev/null
select is((select status from workflow.runs where run_id = :'done_run'), 'completed', 'the run completed');

select throws_ok(format('select workflow.cancel_workflow_run(%L)', :'done_run'), 'WF013', null,
    'cancelling a completed run is WF013');
select is((select status from workflow.runs where run_id = :'done_run'), 'completed', 'and leaves it completed');
select lives_ok(format('select workflow.cancel_workflow_run(%L, %L, force => true)', :'done_run', 'recalled'),
    'with force it is cancelled anyway');
select is(
    (select array[status, error_message, (cancelled_at is not null)::text] from workflow.runs where run_id = :'done_run'),
    array['failed', 'recalled', 'true'], 'a forced cancel marks the completed run failed and cancelled');

select cancelled_at as first_cancel from workflow.runs where run_id = :'done_run' \gset
select lives_ok(format('select workflow.cancel_workflow_run(%L, %L)', :'done_run', 'again'),
    'cancelling a cancelled run again is not an error');
select is(
    (select array[error_message, cancelled_at::text] from workflow.runs where run_id = :'done_run'),
    array['recalled', :'first_cancel'], 'and changes nothing');

select throws_ok(format('select workflow.cancel_workflow_run(%L)', gen_random_uuid()), 'WF011', null,
    'an unknown run is WF011');

select * from finish();
rollback;
