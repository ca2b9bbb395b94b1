-- A local step is run only by the process executing its run (the owner): a run of a flow with
-- local steps and no owner could never end, so start_flow, start_flows and retry_failed_workflow
-- refuse it with WF019 and create nothing; with an owner, or with only distributed steps, it starts.
begin;
\ir ../_helpers.psql
select plan(7);

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

select * from finish();
rollback;
