-- A different shape under an existing slug is WF007 rather than a silent redefinition: an
-- extra or missing step, another dependency, another option, another flow timeout. The stored
-- flow stays as it was.
begin;
\ir ../_helpers.psql
select plan(8);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}') \g /dev/null
select workflow.get_flow('f') as before \gset

select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}, {"slug": "c"}]}')$$,
    'WF007', null, 'an extra step');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}]}')$$,
    'WF007', null, 'a missing step');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b"}]}')$$,
    'WF007', null, 'a dependency removed');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"], "max_attempts": 5}]}')$$,
    'WF007', null, 'an option changed');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"], "type": "map"}]}')$$,
    'WF007', null, 'a step type changed');
select throws_ok($$select workflow.register_flow('{"slug": "f", "timeout": 10, "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}')$$,
    'WF007', null, 'a flow timeout added');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b2", "depends_on": ["a"]}]}')$$,
    'WF007', null, 'a step renamed');
select is(workflow.get_flow('f'), :'before'::jsonb, 'the stored flow is unchanged');

select * from finish();
rollback;
