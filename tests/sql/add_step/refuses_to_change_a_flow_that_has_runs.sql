-- Once a flow has a run its shape is fixed (runs count its steps): add_step is WF008.
begin;
\ir ../_helpers.psql
select plan(3);

select sw_test.setup_flow('chain3') as flow \gset
select lives_ok($$select workflow.add_step('chain3', 'd', array['c'])$$, 'a flow without runs can grow');
select workflow.start_flow('chain3', owner => 'exec1') as run_id \gset
select throws_ok($$select workflow.add_step('chain3', 'e', array['d'])$$, 'WF008', null, 'a flow with a run is WF008');
select is((select count(*) from workflow.steps where flow_slug = 'chain3'), 4::bigint, 'the step was not added');

select * from finish();
rollback;
