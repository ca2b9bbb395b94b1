-- prune deletes versions retired before now - older_than once no run uses them: not a version
-- retired later, not one whose runs are left, never the current one.
begin;
\ir ../_helpers.psql
select plan(3);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}', now => sw_test.t0()) \g /dev/null
select sw_test.drain('default', now => sw_test.at(1)) \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "b", "execution": "distributed"}]}') \g /dev/null
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "c", "execution": "distributed"}]}') \g /dev/null
select workflow.retire_flow_version('f', 1, sw_test.at(2)) \g /dev/null
select workflow.retire_flow_version('f', 2, sw_test.at(2)) \g /dev/null

select is((select p.versions_deleted from workflow.prune('1 day', now => sw_test.at(3)) p), 0,
    'retired less than a day ago: kept');
select is((select p.versions_deleted from workflow.prune('1 second', now => sw_test.at(10), batch_size => 1) p), 2,
    'retired long enough: the unused one goes, and version 1 once its run was pruned in the same call');
select is((select array_agg(version) from workflow.list_flow_versions('f')), array[3], 'the current version stays');

select * from finish();
rollback;
