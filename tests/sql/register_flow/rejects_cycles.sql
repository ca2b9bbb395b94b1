-- A definition whose dependencies form a cycle (two steps, three steps, or a cycle hanging off a
-- valid part) is WF005; a step depending on itself is WF006. Nothing is stored.
begin;
\ir ../_helpers.psql
select plan(5);

select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [
    {"slug": "a", "depends_on": ["b"]}, {"slug": "b", "depends_on": ["a"]}]}')$$, 'WF005', null, 'a two-step cycle');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [
    {"slug": "a", "depends_on": ["c"]}, {"slug": "b", "depends_on": ["a"]}, {"slug": "c", "depends_on": ["b"]}]}')$$,
    'WF005', null, 'a three-step cycle');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [
    {"slug": "root"}, {"slug": "x", "depends_on": ["root", "y"]}, {"slug": "y", "depends_on": ["x"]}]}')$$,
    'WF005', null, 'a cycle behind a valid root');
select throws_ok($$select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "depends_on": ["a"]}]}')$$,
    'WF006', null, 'a self dependency');
select is((select count(*) from workflow.flows), 0::bigint, 'no flow was stored');

select * from finish();
rollback;
