-- Names reach tables, JSON keys and (queues) pgmq table names built with format('%I'), so
-- add_step rejects bad ones with WF001: step names, "run" as a step name (the key that carries
-- the run input), dependency names, queue names (lower case, at most 48 characters) and flows.
begin;
\ir ../_helpers.psql
select plan(10);

select workflow.create_flow('f') \g /dev/null
select throws_ok($$select workflow.add_step('f', 'run')$$, 'WF001', null, '"run" is reserved as a step name');
select throws_ok($$select workflow.add_step('f', '1st')$$, 'WF001', null, 'a step name starting with a digit');
select throws_ok($$select workflow.add_step('f', 'a-b')$$, 'WF001', null, 'a step name with a dash');
select throws_ok($$select workflow.add_step('f', 'a;drop table x')$$, 'WF001', null, 'a step name with SQL in it');
select throws_ok(format('select workflow.add_step(%L, %L)', 'f', repeat('s', 64)), 'WF001', null, 'a step name over 63 characters');
select throws_ok($$select workflow.add_step('f', 'a', array['bad name'])$$, 'WF001', null, 'a bad dependency name');
select throws_ok($$select workflow.add_step('f', 'a', queue_name => 'Upper')$$, 'WF001', null, 'a queue name with upper case');
select throws_ok(format('select workflow.add_step(%L, %L, queue_name => %L)', 'f', 'a', repeat('q', 49)), 'WF001', null, 'a queue name over 48 characters');
select throws_ok($$select workflow.add_step('bad flow', 'a')$$, 'WF001', null, 'a bad flow name');
select is((select count(*) from workflow.steps), 0::bigint, 'nothing was stored');

select * from finish();
rollback;
