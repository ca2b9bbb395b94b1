-- A different shape under an existing slug becomes a new version, numbered one above the highest
-- and current: an extra or missing step, another dependency, another option, another flow
-- timeout, a renamed step. The versions before stay as they were.
begin;
\ir ../_helpers.psql
select plan(10);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}') \g /dev/null
select workflow.get_flow('f') as before \gset

create function pg_temp.reg(definition text) returns text language sql as $$
    select format('%s,%s', v.version, v.created) from workflow.register_flow_version(definition::jsonb) v
$$;
select is(pg_temp.reg('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}, {"slug": "c"}]}'), '2,t', 'an extra step');
select is(pg_temp.reg('{"slug": "f", "steps": [{"slug": "a"}]}'), '3,t', 'a missing step');
select is(pg_temp.reg('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b"}]}'), '4,t', 'a dependency removed');
select is(pg_temp.reg('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"], "max_attempts": 5}]}'), '5,t', 'an option changed');
select is(pg_temp.reg('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"], "type": "map"}]}'), '6,t', 'a step type changed');
select is(pg_temp.reg('{"slug": "f", "timeout": 10, "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}'), '7,t', 'a flow timeout added');
select is(pg_temp.reg('{"slug": "f", "steps": [{"slug": "a"}, {"slug": "b2", "depends_on": ["a"]}]}'), '8,t', 'a step renamed');
select is((select version from workflow.list_flow_versions('f') where is_current), 8, 'the last one registered is current');
select is(workflow.get_flow('f', 1), :'before'::jsonb, 'version 1 is unchanged');
select is(workflow.get_flow('f') -> 'steps' -> 1 ->> 'slug', 'b2', 'get_flow without a version shows the current one');

select * from finish();
rollback;
