-- start_flow on a flow that does not exist is WF002, on a flow with no steps WF016; neither
-- creates a run.
begin;
\ir ../_helpers.psql
select plan(3);

select throws_ok($$select workflow.start_flow('nope')$$, 'WF002', null, 'an unknown flow is WF002');
select workflow.create_flow('empty') \g /dev/null
select throws_ok($$select workflow.start_flow('empty')$$, 'WF016', null, 'a flow without steps is WF016');
select is((select count(*) from workflow.runs), 0::bigint, 'no run was created');

select * from finish();
rollback;
