-- When the lease of a task's last attempt expires, the claim that finds its message fails the
-- task, its step and its run (a lease-expiry error), returns nothing for it, and sweeps the
-- rest of the run (invariant 4), including tasks of the run it leased in the same claim.
begin;
\ir ../_helpers.psql
select plan(9);

-- boom (max_attempts 1) and ok1 on queue default, ok2 on queue other; never waits on all three.
select sw_test.setup_flow('wide') \g /dev/null
select workflow.start_flow('wide') as run_id \gset
select count(*) as claimed from workflow.claim_tasks('default', now => sw_test.t0()) \gset

-- Only boom's message is in reach (qty 1, oldest first): the claim fails the run.
select is((select count(*) from workflow.claim_tasks('default', 1, now => sw_test.at(60))), 0::bigint,
    'the claim returns nothing for the exhausted task');
select results_eq(
    format('select status, failed_step, error_message ~ %L from workflow.runs where run_id = %L', 'lease expired', :'run_id'),
    $$values ('failed', 'boom', true)$$,
    'the run failed on boom with a lease-expiry error');
select is((select status from workflow.step_states where run_id = :'run_id' and step_slug = 'boom'), 'failed', 'the step failed');
select is((select status from workflow.tasks where task_id = sw_test.task_id(:'run_id', 'boom')), 'failed', 'the task failed');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'no live message or task is left for the run');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(120))), 0::bigint, 'nothing to claim afterwards');

-- Same, but the expiring claim also reaches ok1, whose lease expired too (attempt 1 of 3).
select workflow.start_flow('wide') as run2 \gset
select count(*) as claimed from workflow.claim_tasks('default', now => sw_test.at(1000)) \gset
select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(1060))), 0::bigint,
    'a claim that fails a run hands out none of that run''s tasks');
select is((select status from workflow.tasks where task_id = sw_test.task_id(:'run2', 'ok1')), 'failed',
    'the other task it reached is swept to failed');
select is(sw_test.live_work(:'run2'), 0::bigint, 'no live message or task is left for the run');

select * from finish();
rollback;
