-- Pausing and resuming a run whose step sleeps does not end the sleep: after resume the task is
-- claimable at its wake time, not at once.
begin;
\ir ../_helpers.psql
select plan(3);

select workflow.register_flow('{"slug": "s", "steps": [{"slug": "nap", "execution": "distributed", "sleep": 60}]}') \g /dev/null
select workflow.start_flow('s', '{}', now => sw_test.t0()) as run_id \gset
select workflow.pause_workflow_run(:'run_id') \g /dev/null
select workflow.resume_workflow_run(:'run_id', now => sw_test.at(10)) \g /dev/null

select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(59))), 0::bigint,
    'still asleep after the resume');
select is((select step_slug from workflow.claim_tasks('default', 10, now => sw_test.at(60))), 'nap',
    'claimable at its wake time');
select is((select attempts_count from workflow.tasks where run_id = :'run_id'), 1, 'claimed once');

select * from finish();
rollback;
