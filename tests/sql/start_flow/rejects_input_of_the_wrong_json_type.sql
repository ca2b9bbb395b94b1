-- The run input must be a JSON object (it is handed to steps under "run" and merged with
-- dependency outputs), or an array for a flow with a root map step (which maps over it).
-- Anything else is WF009 and creates nothing.
begin;
\ir ../_helpers.psql
select plan(10);

select sw_test.setup_flow('chain3') \g /dev/null
select sw_test.setup_flow('root_map') \g /dev/null

select throws_ok($$select workflow.start_flow('chain3', '[1, 2]')$$, 'WF009', null, 'an array for an object flow');
select throws_ok($$select workflow.start_flow('chain3', '"text"')$$, 'WF009', null, 'a string');
select throws_ok($$select workflow.start_flow('chain3', '42')$$, 'WF009', null, 'a number');
select throws_ok($$select workflow.start_flow('chain3', 'null')$$, 'WF009', null, 'JSON null');
select throws_ok($$select workflow.start_flow('chain3', null)$$, 'WF009', null, 'SQL null');
select throws_ok($$select workflow.start_flow('root_map', '{"items": [1]}')$$, 'WF009', null, 'an object for a root-map flow');
select throws_ok($$select workflow.start_flow('root_map', '"abc"')$$, 'WF009', null, 'a string for a root-map flow');
select is((select count(*) from workflow.runs) + (select count(*) from workflow.tasks)
    + (select count(*) from workflow.step_states), 0::bigint, 'nothing was created');
select lives_ok($$select workflow.start_flow('chain3', '{}')$$, 'an object is accepted');
select lives_ok($$select workflow.start_flow('root_map', '[]')$$, 'an array is accepted for a root-map flow');

select * from finish();
rollback;
