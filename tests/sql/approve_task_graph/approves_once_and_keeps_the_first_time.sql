-- approve_task_graph sets approved_at and returns it; a repeat keeps (and returns) the first
-- time; an unknown graph is WF017.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.store_task_graph('g', '[{"id": "a"}]') as gid \gset

select is(workflow.approve_task_graph(:'gid', sw_test.at(10)), sw_test.at(10), 'returns the approval time');
select is((select approved_at from workflow.task_graphs where graph_id = :'gid'), sw_test.at(10), 'approved_at is set');
select is(workflow.approve_task_graph(:'gid', sw_test.at(20)), sw_test.at(10), 'a repeat returns the first approval time');
select is((select approved_at from workflow.task_graphs where graph_id = :'gid'), sw_test.at(10), 'a repeat changes nothing');
select throws_ok($$select workflow.approve_task_graph(gen_random_uuid())$$, 'WF017', null, 'an unknown graph is WF017');

select * from finish();
rollback;
