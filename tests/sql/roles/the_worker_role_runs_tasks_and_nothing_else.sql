-- workflow_worker (migration 0005) can do the task path: claim, complete, fail (down to a final
-- failure that fails the run), extend leases, read flow shapes; and nothing of the admin's:
-- define or delete flows, start, cancel, pause, resume, retry or prune runs, read other schemas.
-- Every engine function runs with the caller's rights, so these checks call them as the role.
begin;
\ir ../_helpers.psql
select plan(20);

select workflow.register_flow('{"slug": "w", "steps": [{"slug": "a", "execution": "distributed"}, {"slug": "m", "execution": "distributed", "type": "map", "depends_on": ["a"], "map_over": "a"}, {"slug": "z", "execution": "distributed", "depends_on": ["m"]}]}') \g /dev/null
select workflow.register_flow('{"slug": "once", "steps": [{"slug": "x", "execution": "distributed", "max_attempts": 1}]}') \g /dev/null
select workflow.start_flow('w', now => sw_test.t0()) as run \gset
select workflow.start_flow('once', now => sw_test.t0()) as doomed \gset
create schema app_private;
create table app_private.secrets (s text);
create table public.sw_test_secrets (s text);
grant usage on schema sw_test to workflow_worker;
grant execute on all functions in schema sw_test to workflow_worker;

set local role workflow_worker;
select is((select count(*)::integer from workflow.claim_tasks('default', 10, 'w1', now => sw_test.at(1))), 2,
    'the worker claims (a of one run, x of the other)');
select ok(workflow.extend_lease(sw_test.task_id(:'run', 'a'), 1, 30, sw_test.at(2)), 'extends a lease');
select ok(workflow.complete_task(sw_test.task_id(:'run', 'a'), 1, '[1, 2, 3]', sw_test.at(3)), 'completes a task, starting the map');
select is(sw_test.drain('default', now => sw_test.at(4)), 4, 'drains the map and the join');
select is((select status from workflow.runs where run_id = :'run'), 'completed', 'and so completes the run');
select is(workflow.fail_task(sw_test.task_id(:'doomed', 'x'), 1, 'boom', sw_test.at(5)), 'failed',
    'reports a final failure');
select is((select status from workflow.runs where run_id = :'doomed'), 'failed', 'which fails the run');
select is((workflow.get_flow('w') ->> 'slug'), 'w', 'reads a flow''s shape');

select throws_ok($$select workflow.register_flow('{"slug": "mine", "steps": [{"slug": "a", "execution": "distributed"}]}')$$, '42501', null,
    'cannot define a flow');
select throws_ok($$select workflow.add_step('w', 'extra')$$, '42501', null, 'cannot add a step');
select throws_ok($$delete from workflow.flows$$, '42501', null, 'cannot delete flows');
select throws_ok($$select workflow.start_flow('w')$$, '42501', null, 'cannot start a run');
reset role;
select workflow.start_flow('w') as other \gset
set local role workflow_worker;
select throws_ok(format('select workflow.cancel_workflow_run(%L)', :'other'), '42501', null, 'cannot cancel a run');
select throws_ok(format('select workflow.pause_workflow_run(%L)', :'other'), '42501', null, 'cannot pause a run');
select throws_ok(format('select workflow.retry_failed_workflow(%L)', :'doomed'), '42501', null, 'cannot retry a run');
select throws_ok(format('update workflow.runs set cancelled_at = now() where run_id = %L', :'other'), '42501', null,
    'cannot mark a run cancelled by hand');
select throws_ok($$select * from workflow.prune('0 seconds', now => sw_test.at(100))$$, '42501', null,
    'cannot prune (a finished run is there to delete)');
select throws_ok($$select * from app_private.secrets$$, '42501', null, 'cannot read another schema');
select throws_ok($$select * from public.sw_test_secrets$$, '42501', null, 'cannot read the public schema''s tables');
select throws_ok($$create table workflow.mine (x int)$$, '42501', null, 'cannot create objects in the engine''s schema');

select * from finish();
rollback;
