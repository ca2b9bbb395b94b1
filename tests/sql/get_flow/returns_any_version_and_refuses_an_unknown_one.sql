-- get_flow(slug, version) returns that version; without one, the current; an unknown version is
-- WF020 and an unknown flow WF002.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a"}]}') \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "b"}]}') \g /dev/null
select is(workflow.get_flow('f', 1) -> 'steps' -> 0 ->> 'slug', 'a', 'version 1');
select is(workflow.get_flow('f') -> 'steps' -> 0 ->> 'slug', 'b', 'the current version 2');
select throws_ok($$select workflow.get_flow('f', 3)$$, 'WF020', null, 'an unknown version: WF020');
select throws_ok($$select workflow.get_flow('nope', 1)$$, 'WF002', null, 'an unknown flow: WF002');

select * from finish();
rollback;
