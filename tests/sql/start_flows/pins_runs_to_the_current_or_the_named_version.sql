-- A run is pinned to the version it started on: v2 (a step added, one removed) registered while
-- a v1 run is in flight does not change what that run does next; a start without a version runs
-- the current one, version => n runs version n. Unknown version: WF020; retired: WF021.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"},
    {"slug": "old", "depends_on": ["a"], "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}') as r1 \gset
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"},
    {"slug": "new", "depends_on": ["a"], "execution": "distributed"}, {"slug": "more", "depends_on": ["new"], "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}') as r2 \gset
select workflow.start_flow('f', '{}', version => 1) as r3 \gset
select sw_test.drain('default') \g /dev/null

select is((select status from workflow.runs where run_id = :'r1'), 'completed', 'the v1 run completed');
select is((select array_agg(step_slug order by step_slug) from workflow.step_states where run_id = :'r1'),
    array['a', 'old'], 'on v1''s steps');
select is((select array_agg(step_slug order by step_slug) from workflow.step_states where run_id = :'r2'),
    array['a', 'more', 'new'], 'a start without a version runs v2''s steps');
select is((workflow.get_run_status(:'r2') ->> 'version')::integer, 2, 'get_run_status names version 2');
select is((select status from workflow.runs where run_id = :'r2'), 'completed', 'the v2 run completed');
select is((select array_agg(step_slug order by step_slug) from workflow.step_states where run_id = :'r3'),
    array['a', 'old'], 'version => 1 runs v1 while v2 is current');
select throws_ok($$select workflow.start_flow('f', '{}', version => 7)$$, 'WF020', null, 'an unknown version: WF020');
select workflow.retire_flow_version('f', 1) \g /dev/null
select throws_ok($$select workflow.start_flow('f', '{}', version => 1)$$, 'WF021', null, 'a retired version: WF021');
select throws_ok($$select * from workflow.start_flows('f', array['{}'::jsonb], version => 1)$$, 'WF021', null, 'start_flows too');

select * from finish();
rollback;
