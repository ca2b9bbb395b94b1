-- get_task_graph returns every column as one JSON object (approval and run fields null until
-- set); an unknown graph is WF017.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.store_task_graph('Ship it', '[{"id": "a", "description": "A"}, {"id": "b", "depends_on": ["a"]}]',
    null, sw_test.t0()) as gid \gset

select is((select array_agg(k order by k) from jsonb_object_keys(workflow.get_task_graph(:'gid')) as k),
    array['approved_at', 'created_at', 'decomposed_at', 'flow_slug', 'goal', 'graph_id', 'hierarchy', 'last_run_id', 'tasks'],
    'every field is present');
select is(workflow.get_task_graph(:'gid') ->> 'goal', 'Ship it', 'the goal');
select is(workflow.get_task_graph(:'gid') -> 'tasks', (select tasks from workflow.task_graphs where graph_id = :'gid'),
    'the stored tasks');
select is(workflow.get_task_graph(:'gid') -> 'approved_at', 'null'::jsonb, 'not approved yet');
select throws_ok($$select workflow.get_task_graph(gen_random_uuid())$$, 'WF017', null, 'an unknown graph is WF017');

select * from finish();
rollback;
