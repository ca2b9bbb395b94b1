-- Versions newest first, the current one marked, with live and total runs each. Unknown flow:
-- WF002.
begin;
\ir ../_helpers.psql
select plan(3);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}') \g /dev/null
select workflow.start_flow('f', '{}') \g /dev/null
select sw_test.drain('default') \g /dev/null
select workflow.start_flow('f', '{}') \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}') \g /dev/null

select results_eq(
    $$select version, is_current, live_runs, total_runs from workflow.list_flow_versions('f')$$,
    $$values (2, true, 1::bigint, 1::bigint), (1, false, 1::bigint, 3::bigint)$$,
    'v2 current with 1 live run; v1 with 1 live of 3');
select is((select shape_hash from workflow.list_flow_versions('f') where version = 1),
    workflow.flow_shape_hash(workflow.get_flow('f', 1)), 'each with its shape hash');
select throws_ok($$select * from workflow.list_flow_versions('nope')$$, 'WF002', null, 'an unknown flow: WF002');

select * from finish();
rollback;
