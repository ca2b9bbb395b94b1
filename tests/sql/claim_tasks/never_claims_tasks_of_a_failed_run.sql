-- Tasks of a failed run are never claimed: the failure sweeps them, and even a message left
-- behind (a sweep skips task rows another transaction holds; simulated here by failing the run
-- row directly) is passed over because the claim checks the run's status.
begin;
\ir ../_helpers.psql
select plan(5);

select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide') as run_id \gset
select task_id as boom, attempt from workflow.claim_tasks('default', 1, now => sw_test.t0()) \gset
select is(workflow.fail_task(:boom, :attempt, 'kaboom', sw_test.at(1)), 'failed', 'boom fails for good');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(2))) +
          (select count(*) from workflow.claim_tasks('other', now => sw_test.at(2))), 0::bigint,
    'nothing of the failed run is claimed on any queue');

select workflow.start_flow('wide') as run2 \gset
update workflow.runs set status = 'failed' where run_id = :'run2';
select is(sw_test.messages('default') + sw_test.messages('other'), 3::bigint, 'the left-behind messages exist');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(3))) +
          (select count(*) from workflow.claim_tasks('other', now => sw_test.at(3))), 0::bigint,
    'a message left behind by a failed run is not claimed');
select is((select count(*) from workflow.tasks where run_id = :'run2' and status = 'started'), 0::bigint,
    'no task of it was started');

select * from finish();
rollback;
