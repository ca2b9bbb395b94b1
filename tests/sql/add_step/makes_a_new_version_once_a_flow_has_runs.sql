-- Once a run uses a flow's current version its shape is fixed: add_step copies it into a new
-- version, adds the step there and makes it current; the run keeps its own shape, and later
-- add_step calls keep growing the new version until a run uses it.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('chain3') as flow \gset
select lives_ok($$select workflow.add_step('chain3', 'd', array['c'], execution => 'distributed')$$, 'a flow without runs grows in place');
select is((select count(*) from workflow.flow_versions where flow_slug = 'chain3'), 1::bigint, 'still one version');
select workflow.start_flow('chain3') as run_id \gset
select lives_ok($$select workflow.add_step('chain3', 'e', array['d'], execution => 'distributed')$$, 'a flow with a run grows too');
select lives_ok($$select workflow.add_step('chain3', 'f', array['e'], execution => 'distributed')$$, 'and again, into the same new version');
select is(
    (select array_agg(version order by version) from workflow.list_flow_versions('chain3')),
    array[1, 2], 'the run made one new version, not one per step');
select is(jsonb_array_length(workflow.get_flow('chain3', 1) -> 'steps'), 4, 'version 1 keeps its 4 steps');
select is(jsonb_array_length(workflow.get_flow('chain3') -> 'steps'), 6, 'the current version 2 has 6');
select is(
    (select v.shape_hash from workflow.flow_versions v where v.flow_slug = 'chain3' and v.version = 2),
    workflow.flow_shape_hash(workflow.get_flow('chain3', 2)), 'the new version''s hash follows its shape');

select * from finish();
rollback;
