-- An idempotency key: inside dedupe_window a repeat with the same input returns the first run
-- (created false), with another input it is refused (WF030) and changes nothing; after the
-- window a new run starts; keys are per flow; prune removes keys whose window has ended.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('chain3') \g /dev/null
select sw_test.setup_flow('retry') \g /dev/null
select run_id as first from workflow.start_flows('chain3', array['{"a": 1}'::jsonb], now => sw_test.t0(),
    idempotency_keys => array['order-1'], dedupe_window => interval '1 hour') \gset
select results_eq(
    format($$select run_id, created from workflow.start_flows('chain3', array['{"a": 1}'::jsonb], now => %L,
        idempotency_keys => array['order-1'], dedupe_window => interval '1 hour')$$, sw_test.at(600)),
    format($$values (%L::uuid, false)$$, :'first'),
    'a repeat inside the window returns the first run');
select throws_ok(
    format($$select workflow.start_flow('chain3', '{"a": 2}', now => %L, idempotency_key => 'order-1', dedupe_window => interval '1 hour')$$, sw_test.at(601)),
    'WF030', null, 'another input inside the window is refused');
select is((select count(*) from workflow.runs where flow_slug = 'chain3'), 1::bigint, 'and nothing was started');
select isnt(workflow.start_flow('chain3', '{"a": 1}', now => sw_test.at(3601), idempotency_key => 'order-1', dedupe_window => interval '1 hour'),
    :'first'::uuid, 'after the window a new run starts');
select isnt(workflow.start_flow('retry', '{"a": 1}', now => sw_test.t0(), idempotency_key => 'order-1'),
    :'first'::uuid, 'keys are per flow');
select throws_ok($$select workflow.start_flow('chain3', idempotency_key => 'k', dedupe_window => interval '0')$$,
    'WF010', null, 'a non-positive window is refused');
select throws_ok($$select * from workflow.start_flows('chain3', array['{}'::jsonb, '{}'::jsonb], idempotency_keys => array['k', 'k'])$$,
    'WF010', null, 'a key twice in one batch is refused');
select workflow.prune(interval '1 hour', now => sw_test.at(3601 + 7200 + 1)) \g /dev/null
select is((select count(*) from workflow.start_keys where flow_slug = 'chain3'), 0::bigint,
    'prune removes keys whose window ended before its cutoff');

select * from finish();
rollback;
