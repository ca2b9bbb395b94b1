-- start_flows with a run id that exists with another input is RunIdConflict (WF012), and the
-- whole batch changes nothing (its new runs are not created either); with the same input it is
-- idempotent.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('chain3') \g /dev/null
select '00000000-0000-4000-8000-0000000000c1' as known \gset
select * from workflow.start_flows('chain3', array['{"i": 1}']::jsonb[], array[:'known']::uuid[]) \g /dev/null

select throws_ok(format($$select * from workflow.start_flows('chain3', array['{"i": 0}', '{"i": 2}']::jsonb[],
    array[null, %L]::uuid[])$$, :'known'), 'WF012', null, 'a known run id with another input is WF012');
select is((select count(*) from workflow.runs), 1::bigint, 'the batch created nothing');
select is((select input from workflow.runs where run_id = :'known'), '{"i": 1}'::jsonb, 'the run keeps its input');
select results_eq(format($$select run_id, created from workflow.start_flows('chain3', array['{"i": 1}']::jsonb[], array[%L]::uuid[])$$, :'known'),
    format($$values (%L::uuid, false)$$, :'known'), 'the same input is idempotent');

select * from finish();
rollback;
