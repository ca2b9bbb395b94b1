-- Retiring an old version stops new runs on it while its runs in flight finish; a repeat returns
-- the first time. The current version cannot be retired (WF022, with a hint); an unknown version
-- is WF020, an unknown flow WF002.
begin;
\ir ../_helpers.psql
select plan(7);

select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('f', '{}') as r1 \gset
select throws_ok($$select workflow.retire_flow_version('f', 1)$$, 'WF022', null, 'the only, current version: WF022');
select workflow.register_flow('{"slug": "f", "steps": [{"slug": "a", "execution": "distributed", "timeout": 5}]}') \g /dev/null
select is(workflow.retire_flow_version('f', 1, sw_test.t0()), sw_test.t0(), 'version 1 retired');
select is(workflow.retire_flow_version('f', 1, sw_test.at(5)), sw_test.t0(), 'a repeat returns the first time');
select sw_test.drain('default') \g /dev/null
select is((select status from workflow.runs where run_id = :'r1'), 'completed', 'its run in flight finished');
select throws_ok($$select workflow.retire_flow_version('f', 2)$$, 'WF022', null, 'the current version: WF022');
select throws_ok($$select workflow.retire_flow_version('f', 3)$$, 'WF020', null, 'an unknown version: WF020');
select throws_ok($$select workflow.retire_flow_version('nope', 1)$$, 'WF002', null, 'an unknown flow: WF002');

select * from finish();
rollback;
