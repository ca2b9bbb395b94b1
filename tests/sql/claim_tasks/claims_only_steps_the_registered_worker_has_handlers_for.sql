-- A registered worker claims only tasks of steps in its handlers, and the filter sits inside the
-- locking scan: five unservable messages at the head of the queue do not hide a servable one
-- behind them, even with qty 1. An unregistered worker id (or none) claims anything; null
-- handlers mean any step; a registered worker that is dead claims nothing.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.register_flow('{"slug": "other", "steps": [{"slug": "x", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('chain3', format('{"i": %s}', i)::jsonb) from generate_series(1, 5) as i \g /dev/null
select workflow.start_flow('other') as other_run \gset
select workflow.register_worker('only_x', handlers => '{"other": ["x"]}', now => sw_test.t0()) \g /dev/null
select workflow.register_worker('any', now => sw_test.t0()) \g /dev/null
select workflow.register_worker('gone', heartbeat_timeout_seconds => 1, now => sw_test.t0()) \g /dev/null

select is((select count(*) from workflow.claim_tasks('default', worker_id => 'gone', now => sw_test.at(2))), 0::bigint,
    'a dead registered worker claims nothing');
select results_eq($$select run_id, step_slug from workflow.claim_tasks('default', 1, worker_id => 'only_x', now => sw_test.at(2))$$,
    format($$values (%L::uuid, 'x')$$, :'other_run'), 'qty 1 gets the servable task behind five it cannot serve');
select is((select count(*) from workflow.claim_tasks('default', worker_id => 'only_x', now => sw_test.at(2))), 0::bigint,
    'and nothing else');
select is((select count(*) from workflow.claim_tasks('default', 2, worker_id => 'any', now => sw_test.at(2))), 2::bigint,
    'null handlers: any step');
select is((select count(*) from workflow.claim_tasks('default', 2, worker_id => 'stranger', now => sw_test.at(2))), 2::bigint,
    'an unregistered worker id: any step');
select is((select count(*) from workflow.claim_tasks('default', 2, now => sw_test.at(2))), 1::bigint,
    'no worker id: any step (the last one)');

select * from finish();
rollback;
