-- While a run is paused nothing new of it becomes claimable: a step made ready by a completion
-- gets a parked message, and a lease that expires (a worker died) is parked by the claim that
-- finds it instead of being handed out. Resume releases both.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as run_id \gset
select task_id as a, attempt from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select workflow.pause_workflow_run(:'run_id') \g /dev/null

select is(workflow.complete_task(:a, :attempt, '{"a": 1}', sw_test.at(1)), true, 'a running task completes during the pause');
select is((select status from workflow.step_states where run_id = :'run_id' and step_slug = 'b'), 'started',
    'its dependent step starts');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(2))), 0::bigint,
    'but its task is not claimable while paused');

-- b claimed after a resume, then paused again; the worker renews its lease once, then dies.
select workflow.resume_workflow_run(:'run_id') \g /dev/null
select task_id as b, attempt as b_attempt from workflow.claim_tasks('default', now => sw_test.at(3)) \gset
select workflow.pause_workflow_run(:'run_id') \g /dev/null
select is(workflow.extend_lease(:b, :b_attempt, 10, sw_test.at(4)), true, 'a running task of a paused run may renew its lease');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(20))), 0::bigint,
    'its expired lease is not handed out while paused');
select is(sw_test.messages('default', sw_test.at(86400 * 365)), 0::bigint, 'the claim parked its message');

select workflow.resume_workflow_run(:'run_id') \g /dev/null
select task_id as b2, attempt as b2_attempt from workflow.claim_tasks('default', now => sw_test.at(30)) \gset
select is(array[:b2, :b2_attempt], array[:b, 2], 'after resume the abandoned task is claimed again as the next attempt');
select workflow.complete_task(:b2, :b2_attempt, '{"b": 2}', sw_test.at(31)) \g /dev/null
select is(sw_test.drain('default', now => sw_test.at(32)), 1, 'and the run finishes (c)');

select * from finish();
rollback;
