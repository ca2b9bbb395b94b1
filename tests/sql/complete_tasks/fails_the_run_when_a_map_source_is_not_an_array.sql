-- A map step whose source step produced something other than an array cannot start: the run
-- fails on that step with an error naming it, and nothing is left live.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('map') \g /dev/null
select workflow.start_flow('map') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'src'), '{"not": "an array"}'), 'src completes with an object');
select results_eq(
    format('select status, failed_step, error_message like %L from workflow.runs where run_id = %L', '%each%', :'run_id'),
    $$values ('failed', 'each', true)$$, 'the run failed on the map step');
select is((select status from workflow.step_states where run_id = :'run_id' and step_slug = 'each'), 'failed', 'the map step failed');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing live is left for the run');

select * from finish();
rollback;
