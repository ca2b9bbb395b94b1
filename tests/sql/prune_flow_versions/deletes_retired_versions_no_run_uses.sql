-- Versions retired before now - older_than are deleted once no run uses them: not a version
-- retired later, not one whose runs are left, never the current one; prune does it after its
-- runs. A bad interval is WF010.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}', now => sw_test.t0()) \g /dev/null
select sw_test.drain('default', now => sw_test.at(1)) \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "b", "execution": "distributed"}]}') \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "c", "execution": "distributed"}]}') \g /dev/null
select workflow.retire_flow_version('f', 1, sw_test.at(2)) \g /dev/null
select workflow.retire_flow_version('f', 2, sw_test.at(2)) \g /dev/null

select is(workflow.prune_flow_versions('1 day', sw_test.at(3)), 0, 'retired less than a day ago: kept');
select is(workflow.prune_flow_versions('1 second', sw_test.at(10)), 1, 'retired long enough: the unused version 2 goes');
select is((select array_agg(version order by version) from workflow.list_flow_versions('f')), array[1, 3],
    'version 1 stays while its run is kept');
select * from workflow.prune('1 second', now => sw_test.at(10)) \g /dev/null
select is((select array_agg(version) from workflow.list_flow_versions('f')), array[3],
    'prune deletes the run, then its version; the current version stays');
select throws_ok($$select workflow.prune_flow_versions(null)$$, 'WF010', null, 'a null interval: WF010');

select * from finish();
rollback;
