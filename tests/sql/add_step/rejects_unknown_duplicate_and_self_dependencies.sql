-- add_step checks the graph as it grows: unknown flow WF002, a dependency that does not exist
-- yet WF003, a step added twice WF004, a step depending on itself WF006. Nothing is stored.
begin;
\ir ../_helpers.psql
select plan(7);

select workflow.create_flow('f') \g /dev/null
select workflow.add_step('f', 'a') \g /dev/null

select throws_ok($$select workflow.add_step('nope', 'a')$$, 'WF002', null, 'an unknown flow is WF002');
select throws_ok($$select workflow.add_step('f', 'b', array['ghost'])$$, 'WF003', null, 'an unknown dependency is WF003');
select throws_ok($$select workflow.add_step('f', 'b', array['a', 'ghost'])$$, 'WF003', null, 'one unknown among known dependencies is WF003');
select throws_ok($$select workflow.add_step('f', 'a')$$, 'WF004', null, 'adding a step twice is WF004');
select throws_ok($$select workflow.add_step('f', 'b', array['b'])$$, 'WF006', null, 'a step depending on itself is WF006');
select is((select count(*) from workflow.steps where flow_slug = 'f'), 1::bigint, 'no step was stored by the failed calls');
select is((select count(*) from workflow.deps where flow_slug = 'f'), 0::bigint, 'no edge was stored by the failed calls');

select * from finish();
rollback;
