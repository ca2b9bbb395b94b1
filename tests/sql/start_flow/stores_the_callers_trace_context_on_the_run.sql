-- start_flow(..., trace_context =>) stores the caller's trace context on the run as given, for
-- the workers' task spans; without one it stays null. start_flows stores it on every run.
begin;
\ir ../_helpers.psql
select plan(3);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', trace_context => '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}')
    as traced \gset
select workflow.start_flow('chain3') as untraced \gset

select is((select trace_context ->> 'traceparent' from workflow.runs where run_id = :'traced'),
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'the trace context is stored with the run');
select is((select trace_context from workflow.runs where run_id = :'untraced'), null, 'no trace context: null');
select workflow.start_flows('chain3', array['{}', '{}']::jsonb[], trace_context => '{"traceparent": "x"}') \g /dev/null
select is((select count(*) from workflow.runs where trace_context = '{"traceparent": "x"}'),
    2::bigint, 'start_flows stores it on each run');

select * from finish();
rollback;
