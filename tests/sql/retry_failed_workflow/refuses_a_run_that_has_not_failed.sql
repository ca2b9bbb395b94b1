-- Only a failed run can be retried: a running or completed run is WF013, an unknown run WF011.
-- A cancelled run has failed and can be retried; when every step had completed before a forced
-- cancel, the retry carries everything over and completes at once with the same output.
begin;
\ir ../_helpers.psql
select plan(6);

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one', now => sw_test.t0()) as running \gset
select throws_ok(format('select workflow.retry_failed_workflow(%L)', :'running'), 'WF013', null, 'a running run is WF013');
select sw_test.drain('default') \g /dev/null
select throws_ok(format('select workflow.retry_failed_workflow(%L)', :'running'), 'WF013', null, 'a completed run is WF013');
select throws_ok(format('select workflow.retry_failed_workflow(%L)', gen_random_uuid()), 'WF011', null, 'an unknown run is WF011');

select workflow.start_flow('one', now => sw_test.t0()) as cancelled \gset
select workflow.cancel_workflow_run(:'cancelled') \g /dev/null
select workflow.retry_failed_workflow(:'cancelled') as retry_of_cancelled \gset
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.t0()) where run_id = :'retry_of_cancelled'),
    1::bigint, 'a cancelled run can be retried: its step runs again');

select workflow.cancel_workflow_run(:'running', 'recalled', force => true) \g /dev/null
select workflow.retry_failed_workflow(:'running') as carried \gset
select is((select array[status, output::text] from workflow.runs where run_id = :'carried'),
    array['completed', '{"a": {"step": "a"}}'], 'with every step carried over the retry completes at once, same output');
select is((select count(*) from workflow.tasks where run_id = :'carried'), 0::bigint, 'without running anything');

select * from finish();
rollback;
