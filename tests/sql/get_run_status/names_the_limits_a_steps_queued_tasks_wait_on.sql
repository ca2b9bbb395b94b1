-- get_run_status lists, per step, the limits its queued tasks wait on now: a full per-key
-- concurrency limit with its use and the tasks of the same key queued ahead; a rate limit whose
-- window is full; nothing for a step whose tasks all started.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('retry') \g /dev/null
select workflow.set_concurrency_limit('key', 'retry', 1, 'tenant') \g /dev/null
select workflow.start_flow('retry', '{"tenant": "a"}') as a1 \gset
select workflow.start_flow('retry', '{"tenant": "a"}') as a2 \gset
select workflow.start_flow('retry', '{"tenant": "a"}') as a3 \gset
select workflow.claim_tasks('default', 10, now => sw_test.t0()) \g /dev/null

select is(workflow.get_run_status(:'a1') -> 'steps' -> 0 -> 'waiting_on_limits', '[]'::jsonb,
    'the running task waits on nothing');
select is(workflow.get_run_status(:'a3') -> 'steps' -> 0 -> 'waiting_on_limits',
    '[{"kind": "concurrency", "scope": "key", "name": "retry", "key": "a", "in_use": 1, "max": 1, "per_seconds": null, "ahead": 1}]'::jsonb,
    'a queued task of key a names the full key limit and the one task ahead of it');

select workflow.remove_limit('concurrency', 'key', 'retry') \g /dev/null
select workflow.set_rate_limit('flow', 'retry', 1, 60) \g /dev/null
select workflow.claim_tasks('default', 10, now => sw_test.at(2)) \g /dev/null
select is(jsonb_array_length(workflow.get_run_status(:'a3', now => sw_test.at(3)) -> 'steps' -> 0 -> 'waiting_on_limits'), 1,
    'with a full rate window the queued task names the rate limit');
select is(workflow.get_run_status(:'a3', now => sw_test.at(3)) -> 'steps' -> 0 -> 'waiting_on_limits' -> 0 ->> 'kind', 'rate',
    'of kind rate');

select * from finish();
rollback;
