-- create_flow stores one flows row; a second call with the same slug is WF015 (register_flow
-- is the idempotent form); a bad slug is WF001 and a timeout below 1 s is WF010.
begin;
\ir ../_helpers.psql
select plan(11);

select is(workflow.create_flow('orders'), 'orders', 'returns the slug');
select is((select timeout_seconds from workflow.flows where flow_slug = 'orders'), null, 'no timeout by default');
select is(workflow.create_flow('App.Flows.Order:v2-x', 30), 'App.Flows.Order:v2-x', 'module-like slugs with . : - are accepted');
select is((select timeout_seconds from workflow.flows where flow_slug = 'App.Flows.Order:v2-x'), 30, 'the timeout is stored');

select throws_ok($$select workflow.create_flow('orders')$$, 'WF015', null, 'a second create_flow of the same slug is WF015');
select throws_ok($$select workflow.create_flow('9lives')$$, 'WF001', null, 'a slug starting with a digit is WF001');
select throws_ok($$select workflow.create_flow('has space')$$, 'WF001', null, 'a slug with a space is WF001');
select throws_ok($$select workflow.create_flow(null)$$, 'WF001', null, 'a null slug is WF001');
select throws_ok(format('select workflow.create_flow(%L)', repeat('x', 129)), 'WF001', null, 'a slug over 128 characters is WF001');
select throws_ok($$select workflow.create_flow('zero', 0)$$, 'WF010', null, 'a timeout of 0 is WF010');
select is((select count(*) from workflow.flows), 2::bigint, 'the failed calls stored nothing');

select * from finish();
rollback;
