-- record_task_graph_run refuses a graph that is not approved (WF013) and unknown graphs, flows
-- and runs (WF017, WF002, WF011); for an approved graph it records the flow, then the run, and
-- a later call without a run keeps the run.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.store_task_graph('g', '[{"id": "a"}]') as gid \gset
select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', '{}') as rid \gset

select throws_ok(format('select workflow.record_task_graph_run(%L, %L)', :'gid', 'chain3'), 'WF013', null,
    'a graph that is not approved is WF013');
select is((select flow_slug from workflow.task_graphs where graph_id = :'gid'), null, 'the refused call recorded nothing');
select workflow.approve_task_graph(:'gid') \g /dev/null
select throws_ok($$select workflow.record_task_graph_run(gen_random_uuid(), 'chain3')$$, 'WF017', null, 'an unknown graph is WF017');
select throws_ok(format('select workflow.record_task_graph_run(%L, %L)', :'gid', 'nope'), 'WF002', null, 'an unknown flow is WF002');
select throws_ok(format('select workflow.record_task_graph_run(%L, %L, gen_random_uuid())', :'gid', 'chain3'), 'WF011', null,
    'an unknown run is WF011');

select lives_ok(format('select workflow.record_task_graph_run(%L, %L)', :'gid', 'chain3'), 'an approved graph takes its flow');
select is((select flow_slug from workflow.task_graphs where graph_id = :'gid'), 'chain3', 'the flow is recorded');
select workflow.record_task_graph_run(:'gid', 'chain3', :'rid') \g /dev/null
select workflow.record_task_graph_run(:'gid', 'chain3') \g /dev/null
select is((select last_run_id from workflow.task_graphs where graph_id = :'gid'), :'rid'::uuid,
    'the run is recorded, and kept by a later call without one');
select is(workflow.get_task_graph(:'gid') ->> 'last_run_id', :'rid', 'get_task_graph shows it');

select * from finish();
rollback;
