-- A version no run uses is deleted with its steps; one with runs (finished or not) or the
-- current one is refused (WF022); an unknown one is WF020. Numbers are not reused.
begin;
\ir ../_helpers.psql
select plan(7);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}') \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "b", "execution": "distributed"}]}') \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "c", "execution": "distributed"}]}') \g /dev/null
select throws_ok($$select workflow.delete_flow_version('f', 1)$$, 'WF022', null, 'a version with a run: WF022');
select throws_ok($$select workflow.delete_flow_version('f', 3)$$, 'WF022', null, 'the current version: WF022');
select is(workflow.delete_flow_version('f', 2), true, 'an unused old version is deleted');
select is((select array_agg(version order by version) from workflow.list_flow_versions('f')), array[1, 3], 'versions 1 and 3 remain');
select is((select count(*) from workflow.steps where flow_slug = 'f' and step_slug = 'b'), 0::bigint, 'with its steps');
select throws_ok($$select workflow.delete_flow_version('f', 2)$$, 'WF020', null, 'a repeat: WF020');
select is((select version from workflow.register_flow_version('{"slug": "f", "steps": [{"slug": "d", "execution": "distributed"}]}')),
    4, 'the next new shape is version 4, not 2');

select * from finish();
rollback;
