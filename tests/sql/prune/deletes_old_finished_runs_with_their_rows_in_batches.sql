-- prune deletes finished runs (completed, failed, cancelled) that ended before now - older_than,
-- with their step_states, tasks and events, at most batch_size runs per call, oldest first;
-- live runs and recent finished runs are untouched; a repeated call finds nothing more.
begin;
\ir ../_helpers.psql
select plan(12);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed", "max_attempts": 1}]}') \g /dev/null
-- three completed runs (ending at t0+1 s), one failed (t0+2 s), one cancelled (t0+3 s), one live
select workflow.start_flow('chain3', now => sw_test.t0()) from generate_series(1, 3) \g /dev/null
select sw_test.drain('default', now => sw_test.at(1)) \g /dev/null
select workflow.start_flow('one', now => sw_test.t0()) as failed_run \gset
select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(2)) \g /dev/null
select workflow.fail_task(sw_test.task_id(:'failed_run', 'a'), 1, 'boom', sw_test.at(2)) \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as cancelled_run \gset
select workflow.cancel_workflow_run(:'cancelled_run', now => sw_test.at(3)) \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as live_run \gset
select workflow.retry_failed_workflow(:'failed_run', now => sw_test.at(2)) as retry_run \gset

select is(
    (select row(p.*)::text from workflow.prune('1 hour', now => sw_test.at(60)) p),
    row(0, 0, 0, 0, 0)::text, 'nothing ended more than an hour before now: nothing is deleted');
select is(
    (select row(p.*)::text from workflow.prune('10 seconds', 2, now => sw_test.at(11.5)) p),
    row(2, 6, 6, 2 * 5, 0)::text,
    'a batch of 2: the two oldest completed runs, their 3 steps, 3 tasks and 5 events each');
select is(
    (select row(p.runs_deleted, p.tasks_deleted)::text from workflow.prune('10 seconds', 2, now => sw_test.at(11.5)) p),
    row(1, 3)::text, 'the next call: the last run that ended at least 10 s before now');
select is(
    (select row(p.*)::text from workflow.prune('10 seconds', 2, now => sw_test.at(11.5)) p),
    row(0, 0, 0, 0, 0)::text, 'then nothing: the failed run ended 9.5 s before now');
select is(
    (select array_agg(status order by started_at, run_id) from workflow.runs where status <> 'started'),
    array['failed', 'failed'], 'the failed and the cancelled run are still there');
select is(
    (select p.runs_deleted from workflow.prune('0 seconds', now => sw_test.at(100)) p),
    2, 'older_than 0: every finished run goes, failed and cancelled included');
select is((select count(*) from workflow.runs), 2::bigint, 'the live run and the retry (started) remain');
select is((select retry_of from workflow.runs where run_id = :'retry_run'), null,
    'the retry of a pruned run loses its retry_of link, not its row');
select is((select count(*) from workflow.tasks t where not exists (select 1 from workflow.runs r where r.run_id = t.run_id)),
    0::bigint, 'no task outlives its run');
select is((select count(*) from workflow.events e where not exists (select 1 from workflow.runs r where r.run_id = e.run_id)),
    0::bigint, 'no event outlives its run');
select is((select count(*) from workflow.step_states where run_id = :'live_run'), 3::bigint,
    'the live run keeps its step states');
select is(sw_test.drain('default', now => sw_test.at(200)), 4, 'and its work is still claimable (3 steps of chain3 + retry)');

select * from finish();
rollback;
