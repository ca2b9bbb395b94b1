-- A step's "priority" in a definition is stored where set_step_priority keeps it, and is not
-- part of the flow's shape: the same steps with other priorities are the same version, and
-- registering them changes only the priorities. A step that names no priority keeps the one it
-- has (a definition without priorities does not undo set_step_priority); 0 removes it. A
-- priority outside -1000..1000, or not an integer, is WF010 and stores nothing.
begin;
\ir ../_helpers.psql
select plan(12);

select is(
    (select v.created from workflow.register_flow_version('{"slug": "p", "steps": [
        {"slug": "a", "execution": "distributed", "priority": 5},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"], "priority": -7}]}') as v),
    true, 'a definition with step priorities registers'
);
select results_eq(
    $$select step_slug, priority from workflow.step_priorities where flow_slug = 'p' order by step_slug$$,
    $$values ('a', 5), ('b', -7)$$,
    'the priorities are stored where set_step_priority keeps them'
);
select is(
    workflow.flow_shape_hash('{"slug": "p", "steps": [
        {"slug": "a", "execution": "distributed", "priority": 5},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"], "priority": -7}]}'),
    workflow.flow_shape_hash('{"slug": "p", "steps": [
        {"slug": "a", "execution": "distributed"},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"]}]}'),
    'priorities are not part of the shape hash'
);
select is(
    (select row(v.version, v.created)::text from workflow.register_flow_version('{"slug": "p", "steps": [
        {"slug": "a", "execution": "distributed", "priority": 0},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"], "priority": 3}]}') as v),
    '(1,f)', 'other priorities on the same steps are the same version'
);
select results_eq(
    $$select step_slug, priority from workflow.step_priorities where flow_slug = 'p' order by step_slug$$,
    $$values ('b', 3)$$,
    'and change the priorities: 0 removes a step''s row'
);
select workflow.set_step_priority('p', 'a', 9);
select is(
    (select v.created from workflow.register_flow_version('{"slug": "p", "steps": [
        {"slug": "a", "execution": "distributed"},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"]}]}') as v),
    false, 'the definition without priorities is the same version'
);
select results_eq(
    $$select step_slug, priority from workflow.step_priorities where flow_slug = 'p' order by step_slug$$,
    $$values ('a', 9), ('b', 3)$$,
    'and leaves the priorities as they are'
);
select is(workflow.get_flow('p') -> 'steps' -> 0 ? 'priority', false, 'get_flow shows the shape only');

select throws_ok(
    $$select workflow.register_flow('{"slug": "q", "steps": [{"slug": "a", "priority": 1001}]}')$$,
    'WF010', null, 'a priority above 1000 is refused'
);
select throws_ok(
    $$select workflow.register_flow('{"slug": "q", "steps": [{"slug": "a", "priority": -1001}]}')$$,
    'WF010', null, 'a priority below -1000 is refused'
);
select throws_ok(
    $$select workflow.register_flow('{"slug": "q", "steps": [{"slug": "a", "priority": "high"}]}')$$,
    'WF010', null, 'a priority that is not a number is refused'
);
select is(
    (select count(*) from workflow.flows where flow_slug = 'q')
        + (select count(*) from workflow.step_priorities where flow_slug = 'q'),
    0::bigint, 'a refused definition stores nothing'
);

select * from finish();
rollback;
