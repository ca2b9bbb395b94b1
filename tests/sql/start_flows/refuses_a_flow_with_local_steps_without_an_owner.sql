-- A local step is run only by the process executing its run (the owner): a run of a flow with
-- local steps and no owner could never end, so start_flow, start_flows and retry_failed_workflow
-- refuse it with WF019 and create nothing; with an owner, or with only distributed steps, it starts.
begin;
\ir ../_helpers.psql
select plan(10);

select sw_test.setup_flow('local') \g /dev/null
select throws_ok($$select workflow.start_flow('local')$$, 'WF019', null,
    'start_flow of a flow with a local step and no owner is WF019');
select throws_ok($$select * from workflow.start_flows('local', array['{}', '{}']::jsonb[])$$, 'WF019', null,
    'start_flows likewise');
select is((select count(*) from workflow.runs where flow_slug = 'local'), 0::bigint, 'and nothing was created');
select lives_ok($$select workflow.start_flow('local', owner => 'exec1')$$, 'with an owner it starts');
select sw_test.setup_flow('chain3') \g /dev/null
select lives_ok($$select workflow.start_flow('chain3')$$, 'a flow of distributed steps needs no owner');

-- A failed run of a local flow: a retry without an owner is refused, with one it starts.
select workflow.register_worker('exec1', now => sw_test.t0()) \g /dev/null
select workflow.start_flow('local', owner => 'exec1', now => sw_test.t0()) as run_id \gset
select workflow.deregister_worker('exec1', sw_test.at(1)) \g /dev/null
select workflow.maintain(sw_test.at(2)) \g /dev/null
select throws_ok(format('select workflow.retry_failed_workflow(%L)', :'run_id'), 'WF019', null,
    'retry_failed_workflow of a local flow without an owner is WF019');
select lives_ok(format('select workflow.retry_failed_workflow(%L, owner => %L)', :'run_id', 'exec2'),
    'with an owner it starts the new run');
-- The local step completed, a distributed one failed: a retry that carries the local step over
-- runs no local step and needs no owner; reset_all runs it again and does.
select workflow.register_worker('exec3', now => sw_test.at(3)) \g /dev/null
select workflow.start_flow('local', owner => 'exec3', now => sw_test.at(3)) as run2 \gset
select workflow.complete_task(t.task_id, t.attempt, '{}', sw_test.at(4))
from workflow.claim_tasks('local', for_run_id => :'run2', now => sw_test.at(4)) t \g /dev/null
select workflow.fail_task(t.task_id, t.attempt, 'boom', sw_test.at(5), retryable => false)
from workflow.claim_tasks('default', now => sw_test.at(5)) t where t.run_id = :'run2' \g /dev/null
select is((select status from workflow.runs where run_id = :'run2'), 'failed', 'the second run failed at its distributed step');
select lives_ok(format('select workflow.retry_failed_workflow(%L)', :'run2'),
    'a retry carrying every local step over starts without an owner');
select throws_ok(format('select workflow.retry_failed_workflow(%L, reset_all => true)', :'run2'), 'WF019', null,
    'reset_all runs the local step again: WF019 without an owner');

select * from finish();
rollback;
