-- Pausing a paused run changes nothing (one pause time, one event); pausing a completed, failed or
-- cancelled run is WF013; an unknown run is WF011.
begin;
\ir ../_helpers.psql
select plan(7);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as run_id \gset
select workflow.pause_workflow_run(:'run_id', sw_test.at(1)) \g /dev/null
select lives_ok(format('select workflow.pause_workflow_run(%L, %L)', :'run_id', sw_test.at(2)), 'pausing again is not an error');
select is((select paused_at from workflow.runs where run_id = :'run_id'), sw_test.at(1), 'and keeps the first pause time');
select is((select count(*) from workflow.events where run_id = :'run_id' and event = 'run_paused'), 1::bigint,
    'one run_paused event');

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one', now => sw_test.t0()) as done_run \gset
select count(*) from workflow.claim_tasks('default', 10, now => sw_test.t0()) \g /dev/null
select workflow.complete_task(sw_test.task_id(:'done_run', 'a'), 1, '{}', sw_test.at(1)) \g /dev/null
select throws_ok(format('select workflow.pause_workflow_run(%L)', :'done_run'), 'WF013', null, 'a completed run cannot be paused');

select workflow.start_flow('one', now => sw_test.t0()) as cancelled_run \gset
select workflow.cancel_workflow_run(:'cancelled_run') \g /dev/null
select throws_ok(format('select workflow.pause_workflow_run(%L)', :'cancelled_run'), 'WF013', null, 'a cancelled run cannot be paused');
select throws_ok(format('select workflow.pause_workflow_run(%L)', gen_random_uuid()), 'WF011', null, 'an unknown run is WF011');

-- Cancelling a paused run ends it: the pause is cleared and its parked work is removed.
select workflow.cancel_workflow_run(:'run_id') \g /dev/null
select is(
    (select array[status, (paused_at is null)::text, sw_test.live_work(:'run_id')::text] from workflow.runs where run_id = :'run_id'),
    array['failed', 'true', '0'], 'a paused run can be cancelled, and leaves nothing behind');

select * from finish();
rollback;
