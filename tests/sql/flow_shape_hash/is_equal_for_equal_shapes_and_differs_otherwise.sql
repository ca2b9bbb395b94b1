-- The shape hash depends on the shape only: the order steps are listed in, the order of their
-- dependencies and spelled-out defaults do not change it; a step, a dependency, an option or
-- the flow timeout does. A stored version hashes as it was registered. Malformed input: WF010.
begin;
\ir ../_helpers.psql
select plan(8);

select workflow.flow_shape_hash('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}') as h \gset
select is(length(:'h'), 16, 'sixteen hex digits');
select is(workflow.flow_shape_hash('{"slug": "g", "steps": [{"slug": "b", "depends_on": ["a"], "max_attempts": 3}, {"slug": "a"}]}'),
    :'h', 'another order, another flow slug, a default spelled out: the same hash');
select isnt(workflow.flow_shape_hash('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b"}]}'), :'h', 'a dependency removed');
select isnt(workflow.flow_shape_hash('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"], "timeout": 5}]}'),
    :'h', 'an option changed');
select isnt(workflow.flow_shape_hash('{"slug": "f", "timeout": 9, "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}'),
    :'h', 'a flow timeout');
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}') \g /dev/null
select is(workflow.flow_shape_hash(workflow.get_flow('f')), :'h', 'get_flow''s form of the stored version hashes the same');
select throws_ok($$select workflow.flow_shape_hash('[]')$$, 'WF010', null, 'not an object: WF010');
select throws_ok($$select workflow.flow_shape_hash('{"slug": "f"}')$$, 'WF010', null, 'no steps array: WF010');

select * from finish();
rollback;
