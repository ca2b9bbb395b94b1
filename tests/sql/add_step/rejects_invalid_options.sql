-- Options that cannot work are WF010 and store nothing: an unknown type or execution, a queue on
-- a local step, the reserved queue "local" on a distributed step, attempts below 1, negative
-- delays, a lease below 1 s, map_over on a single step or naming a non-dependency, a map with
-- several dependencies and no map_over, and malformed resource names.
begin;
\ir ../_helpers.psql
select plan(15);

select workflow.create_flow('f') \g /dev/null
select workflow.add_step('f', 'a') \g /dev/null
select workflow.add_step('f', 'b') \g /dev/null

select throws_ok($$select workflow.add_step('f', 'x', step_type => 'loop')$$, 'WF010', null, 'an unknown step type');
select throws_ok($$select workflow.add_step('f', 'x', execution => 'remote')$$, 'WF010', null, 'an unknown execution');
select throws_ok($$select workflow.add_step('f', 'x', execution => 'local', queue_name => 'fast')$$, 'WF010', null, 'a local step naming a queue');
select throws_ok($$select workflow.add_step('f', 'x', queue_name => 'fast')$$, 'WF010', null, 'a step naming a queue is local unless it says distributed');
select throws_ok($$select workflow.add_step('f', 'x', execution => 'distributed', queue_name => 'local')$$, 'WF010', null, 'a distributed step on the reserved queue local');
select throws_ok($$select workflow.add_step('f', 'x', max_attempts => 0)$$, 'WF010', null, 'max_attempts 0');
select throws_ok($$select workflow.add_step('f', 'x', base_delay => -1)$$, 'WF010', null, 'a negative base delay');
select throws_ok($$select workflow.add_step('f', 'x', start_delay => -1)$$, 'WF010', null, 'a negative start delay');
select throws_ok($$select workflow.add_step('f', 'x', timeout => 0)$$, 'WF010', null, 'a lease of 0 s');
select throws_ok($$select workflow.add_step('f', 'x', array['a'], map_over => 'a')$$, 'WF010', null, 'map_over on a single step');
select throws_ok($$select workflow.add_step('f', 'x', array['a'], 'map', map_over => 'b')$$, 'WF010', null, 'map_over naming a step that is not a dependency');
select throws_ok($$select workflow.add_step('f', 'x', array['a', 'b'], 'map')$$, 'WF010', null, 'a map with several dependencies and no map_over');
select throws_ok($$select workflow.add_step('f', 'x', resources => array['g p u'])$$, 'WF010', null, 'a malformed resource name');
select is(workflow.add_step('f', 'ok', array['a', 'b'], 'map', map_over => 'b') ->> 'map_over', 'b',
    'a map with several dependencies and an explicit map_over is accepted');
select is((select count(*) from workflow.steps where flow_slug = 'f'), 3::bigint, 'only the valid steps were stored');

select * from finish();
rollback;
