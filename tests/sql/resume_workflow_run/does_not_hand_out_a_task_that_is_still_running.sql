-- A task that was running when its run was paused is still running (its lease has not expired)
-- when the run is resumed: resume must not make it claimable again, or a second worker would run
-- it while the first still does, and the first one's completion would be refused.
begin;
\ir ../_helpers.psql
select plan(3);

select workflow.register_flow('{"slug": "long", "steps": [{"slug": "a", "execution": "distributed", "timeout": 600}]}') \g /dev/null
select workflow.start_flow('long') as run_id \gset
select task_id as a, attempt from workflow.claim_tasks('default', 1, 'w1') \gset
select workflow.pause_workflow_run(:'run_id') \g /dev/null
select workflow.resume_workflow_run(:'run_id') \g /dev/null

-- A few seconds later, well inside the 600 s lease of attempt 1 (real clock: resume used it).
select is((select count(*) from workflow.claim_tasks('default', 10, 'w2', now => clock_timestamp() + interval '5 seconds')),
    0::bigint, 'a second worker cannot claim the task still running');
select is(workflow.complete_task(:a, :attempt, '{"done": true}'), true, 'the first worker''s completion is accepted');
select is((select attempts_count from workflow.tasks where task_id = :a), 1, 'the task ran once');

select * from finish();
rollback;
