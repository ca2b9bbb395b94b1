-- Cancelling a run fails it with the reason and the cancelled flag, turns every queued and
-- started task of it into failed, and deletes their messages in every queue: nothing of the run
-- is left to claim. Other runs are untouched.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide') as run_id \gset
select workflow.start_flow('wide') as bystander \gset
-- boom and ok1 of the first run are started; ok2 waits on queue 'other'.
select count(*) from workflow.claim_tasks('default', 2, now => sw_test.t0()) \g /dev/null
select is(sw_test.live_work(:'run_id'), 6::bigint, 'before: 3 live tasks and 3 messages');

select lives_ok(format('select workflow.cancel_workflow_run(%L, %L)', :'run_id', 'operator said so'), 'cancel succeeds');
select is(
    (select array[status, error_message] from workflow.runs where run_id = :'run_id'),
    array['failed', 'operator said so'], 'the run failed with the reason as its error');
select isnt((select cancelled_at from workflow.runs where run_id = :'run_id'), null, 'and is flagged cancelled');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'zero live messages and zero queued or started tasks');
select is(
    (select count(*) from workflow.tasks where run_id = :'run_id' and status = 'failed' and error_message = 'cancelled: operator said so'),
    3::bigint, 'every task failed, saying it was cancelled');
select is((select count(*) from workflow.claim_tasks('default', 100, now => sw_test.at(3600)) where run_id = :'run_id')
        + (select count(*) from workflow.claim_tasks('other', 100, now => sw_test.at(3600)) where run_id = :'run_id'),
    0::bigint, 'nothing of it is claimable, even after every lease would have expired');
select is(
    (select array_agg(event order by event_id) from workflow.events where run_id = :'run_id' and step_slug is null),
    array['run_started', 'run_cancelled'], 'a run_cancelled event is recorded');
select is(sw_test.live_work(:'bystander'), 6::bigint, 'the other run keeps its 3 tasks and 3 messages');

select * from finish();
rollback;
