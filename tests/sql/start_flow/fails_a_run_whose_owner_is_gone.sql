-- A run started with an owner (the process executing its local steps) fails, naming the owner,
-- when that owner is gone: its heartbeat older than its timeout, deregistered, or never
-- registered within 30 s of the start. The failure comes from the engine's own calls (here
-- get_run_status and claim_tasks), no worker or maintain needed. Nothing claimable stays behind.
-- A run whose local steps are done no longer needs its owner.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('local') \g /dev/null
select workflow.register_worker('exec1', heartbeat_timeout_seconds => 10, now => sw_test.t0()) \g /dev/null
select workflow.start_flow('local', owner => 'exec1', now => sw_test.t0()) as r1 \gset
select workflow.start_flow('local', owner => 'never', now => sw_test.t0()) as r2 \gset
select workflow.start_flow('local', owner => 'exec1', now => sw_test.t0()) as r3 \gset
select is((select owner_worker_id from workflow.runs where run_id = :'r1'), 'exec1', 'the run records its owner');

-- r3's local step completes while exec1 lives; then exec1 dies.
select workflow.claim_tasks('local', for_run_id => :'r3', worker_id => 'exec1', now => sw_test.at(1)) \g /dev/null
select sw_test.complete(sw_test.task_id(:'r3', 'loc'), '"done"', sw_test.at(2)) \g /dev/null

select is(workflow.get_run_status(:'r1', sw_test.at(9)) ->> 'state', 'running', 'while the owner lives: running');
select is(workflow.get_run_status(:'r2', sw_test.at(20)) ->> 'state', 'running', 'an unregistered owner has 30 s of grace');
select is(workflow.get_run_status(:'r1', sw_test.at(31)) ->> 'state', 'failed', 'owner dead: the run failed');
select matches(workflow.get_run_status(:'r1', sw_test.at(31)) ->> 'error', '^owner exec1 is gone', 'the error names the owner');
select is(workflow.get_run_status(:'r2', sw_test.at(31)) ->> 'state', 'failed', 'an owner that never registered: failed after the grace');
select is(sw_test.live_work(:'r1') + sw_test.live_work(:'r2'), 0::bigint, 'nothing claimable stays behind');
select is(workflow.get_run_status(:'r3', sw_test.at(31)) ->> 'state', 'running', 'a run whose local step is done is left alone');

select * from finish();
rollback;
