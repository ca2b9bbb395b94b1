-- A condition that is not one of the documented shapes is WF036, one that reads a step that is
-- not a dependency is WF037; nothing is registered.
begin;
\ir ../_helpers.psql
select plan(11);

create function sw_test.flow_with(condition text) returns text
language sql as $$
    select workflow.register_flow(format('{"slug": "x", "steps": [{"slug": "a"},
        {"slug": "b", "depends_on": ["a"], "condition": %s}]}', condition)::jsonb)
$$;

select throws_ok($$select sw_test.flow_with('"a = 1"')$$, 'WF036', null, 'a string, not a condition');
select throws_ok($$select sw_test.flow_with('{"path": "a"}')$$, 'WF036', null, 'no op');
select throws_ok($$select sw_test.flow_with('{"path": "a", "op": "like", "value": 1}')$$, 'WF036', null, 'an unknown op');
select throws_ok($$select sw_test.flow_with('{"path": "a", "op": "eq"}')$$, 'WF036', null, 'eq without a value');
select throws_ok($$select sw_test.flow_with('{"path": "a", "op": "exists", "value": 1}')$$, 'WF036', null, 'exists with a value');
select throws_ok($$select sw_test.flow_with('{"path": "a", "op": "in", "value": 1}')$$, 'WF036', null, 'in without an array');
select throws_ok($$select sw_test.flow_with('{"all": []}')$$, 'WF036', null, 'an empty all');
select throws_ok($$select sw_test.flow_with('{"path": "a; drop table x", "op": "exists"}')$$, 'WF036', null, 'a path that is not field names');
select throws_ok($$select sw_test.flow_with('{"path": "zzz.ok", "op": "exists"}')$$, 'WF037', null, 'a step that is not a dependency');
select throws_ok($$select sw_test.flow_with(repeat('{"not": ', 9) || '{"path": "a", "op": "exists"}' || repeat('}', 9))$$,
    'WF036', null, 'nested more than 8 levels');
select is((select count(*) from workflow.flows where flow_slug = 'x'), 0::bigint, 'nothing was registered');

select * from finish();
rollback;
