-- fail_task is fail_tasks for one task: it returns 'retry' while attempts remain, 'failed' on
-- the last, and 'stale' for a token that no longer matches.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.register_flow('{"slug": "two", "steps": [{"slug": "a", "execution": "distributed", "max_attempts": 2, "base_delay": 0}]}') \g /dev/null
select workflow.start_flow('two') as run_id \gset
select task_id as t from workflow.claim_tasks('default', now => sw_test.t0()) \gset

select is(workflow.fail_task(:t, 1, 'first', sw_test.at(1)), 'retry', 'attempt 1 of 2: retry');
select is(workflow.fail_task(:t, 1, 'again', sw_test.at(1)), 'stale', 'the same report again: stale');
select is((select attempt from workflow.claim_tasks('default', now => sw_test.at(1))), 2, 'claimed again');
select is(workflow.fail_task(:t, 2, 'second', sw_test.at(2)), 'failed', 'attempt 2 of 2: failed');

select * from finish();
rollback;
