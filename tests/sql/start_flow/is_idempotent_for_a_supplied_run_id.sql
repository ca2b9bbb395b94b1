-- A caller-supplied run_id makes start_flow idempotent: the same id comes back, and there is
-- still one run, one set of step_states and one set of tasks and messages. The same run_id
-- with another input, or for another flow, is WF012 and changes nothing.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('wide') \g /dev/null
select sw_test.setup_flow('chain3') \g /dev/null
select 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as rid \gset

select is(workflow.start_flow('wide', '{"n": 1}', :'rid'), :'rid'::uuid, 'the first call returns the supplied id');
select is(workflow.start_flow('wide', '{"n": 1}', :'rid'), :'rid'::uuid, 'a repeat returns the same id');
select throws_ok(format('select workflow.start_flow(%L, %L, %L)', 'wide', '{"n": 2}', :'rid'), 'WF012', null,
    'a repeat with another input is WF012');
select is((select count(*) from workflow.runs), 1::bigint, 'one run');
select is((select input from workflow.runs where run_id = :'rid'), '{"n": 1}'::jsonb, 'the first input is kept');
select is((select count(*) from workflow.step_states where run_id = :'rid'), 4::bigint, 'one set of step_states');
select is(sw_test.messages('default') + sw_test.messages('other'), 3::bigint, 'one message per root task, not two');
select throws_ok(format('select workflow.start_flow(%L, %L, %L)', 'chain3', '{}', :'rid'), 'WF012', null,
    'the same run_id for another flow is WF012');

select * from finish();
rollback;
