-- Invariant 4 of docs/architecture.md on the failure path: when a run fails, every other queued or started task of it
-- becomes failed and its message is deleted, in every queue it uses, so nothing of the run can
-- be claimed again. Other runs are untouched.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide') as run_id \gset
select workflow.start_flow('wide') as bystander \gset
-- boom and ok1 of the first run are claimed (started); ok2 waits on queue other (queued).
select count(*) as n from workflow.claim_tasks('default', 2, now => sw_test.t0()) \gset

select is(sw_test.live_work(:'run_id'), 6::bigint, 'before: 3 live tasks and 3 messages');
select is(workflow.fail_task(sw_test.task_id(:'run_id', 'boom'), 1, 'kaboom', sw_test.at(1)), 'failed', 'boom fails for good');
select results_eq(
    format('select step_slug, status from workflow.tasks where run_id = %L order by step_slug', :'run_id'),
    $$values ('boom', 'failed'), ('ok1', 'failed'), ('ok2', 'failed')$$,
    'the started and the queued task were swept to failed');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'no live message or task is left for the run in any queue');
select is((select count(*) from workflow.claim_tasks('other', now => sw_test.at(2))
           where run_id = :'run_id'), 0::bigint, 'nothing of it is claimable');
select is(sw_test.live_work(:'bystander'), 6::bigint, 'the other run keeps its 3 tasks and 3 messages');

select * from finish();
rollback;
