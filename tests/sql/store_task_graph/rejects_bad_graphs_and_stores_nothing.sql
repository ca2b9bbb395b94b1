-- Every way a graph can be wrong has its code, and a rejected graph leaves no row: WF016 no
-- tasks, WF010 malformed input, WF001 an id that cannot be a step name, WF004 duplicate id,
-- WF006 self dependency, WF003 unknown dependency, WF005 cycle.
begin;
\ir ../_helpers.psql
select plan(19);

select throws_ok($$select workflow.store_task_graph('g', '[]')$$, 'WF016', null, 'no tasks is WF016');
select throws_ok($$select workflow.store_task_graph('', '[{"id": "a"}]')$$, 'WF010', null, 'a blank goal is WF010');
select throws_ok($$select workflow.store_task_graph(null, '[{"id": "a"}]')$$, 'WF010', null, 'a null goal is WF010');
select throws_ok($$select workflow.store_task_graph('g', '{"id": "a"}')$$, 'WF010', null, 'tasks not an array is WF010');
select throws_ok($$select workflow.store_task_graph('g', null)$$, 'WF010', null, 'null tasks is WF010');
select throws_ok($$select workflow.store_task_graph('g', '["a"]')$$, 'WF010', null, 'a task that is not an object is WF010');
select throws_ok($$select workflow.store_task_graph('g', '[{"description": "x"}]')$$, 'WF010', null, 'a task without id is WF010');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": 7}]')$$, 'WF010', null, 'a numeric id is WF010');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a", "description": 1}]')$$, 'WF010', null,
    'a description that is not a string is WF010');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a", "depends_on": "b"}]')$$, 'WF010', null,
    'depends_on that is not an array is WF010');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a", "depth": "deep"}]')$$, 'WF010', null,
    'a depth that is not a number is WF010');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a", "depth": 1.5}]')$$, 'WF010', null,
    'a fractional depth is WF010');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "Analyze requirements"}]')$$, 'WF001', null,
    'an id that is not a valid step name is WF001');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a"}, {"id": "a"}]')$$, 'WF004', null, 'a duplicate id is WF004');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a", "depends_on": ["a"]}]')$$, 'WF006', null,
    'a task depending on itself is WF006');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a"}, {"id": "b", "depends_on": ["a", "ghost"]}]')$$,
    'WF003', null, 'an unknown dependency is WF003');
select throws_ok($$select workflow.store_task_graph('g', '[{"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]}]')$$,
    'WF005', null, 'a two-task cycle is WF005');
select throws_ok($$select workflow.store_task_graph('g',
    '[{"id": "root"}, {"id": "x", "depends_on": ["root", "z"]}, {"id": "y", "depends_on": ["x"]}, {"id": "z", "depends_on": ["y"]}]')$$,
    'WF005', null, 'a cycle behind a valid root is WF005');
select is((select count(*) from workflow.task_graphs), 0::bigint, 'no graph was stored');

select * from finish();
rollback;
