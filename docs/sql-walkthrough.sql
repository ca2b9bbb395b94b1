-- A first walk through the engine from psql: no Python involved.
-- Run it on a database where the schema is installed: psql -v ON_ERROR_STOP=1 -f docs/sql-walkthrough.sql
-- (it uses a fixed run id, so run it once per database).

-- 1. Define a flow: fetch -> process -> save. Steps are local unless told otherwise (they run in
--    the process that executes the run); here psql plays the worker, so they are distributed,
--    on queue "default" as no queue is named.
select workflow.create_flow('my_workflow');
select workflow.add_step('my_workflow', 'fetch', execution => 'distributed');
select workflow.add_step('my_workflow', 'process', depends_on => array['fetch'], execution => 'distributed');
select workflow.add_step('my_workflow', 'save', depends_on => array['process'], execution => 'distributed');

-- 2. Start a run. Only the root step ("fetch") is enqueued.
select workflow.start_flow('my_workflow', '{"user_id": 123}', run_id => '6f1c1f8e-0000-4000-8000-000000000001');

-- 3. Act as a worker: claim a task (its input holds the run input and its dependencies' outputs)...
select task_id, attempt, step_slug, input from workflow.claim_tasks('default', qty => 10);
-- ...and complete it with the attempt number the claim returned (the claim token).
select workflow.complete_task(task_id => 1, attempt => 1, output => '{"data": "raw"}');

-- 4. Completing "fetch" enqueued "process"; its input now carries fetch's output.
select task_id, attempt, step_slug, input from workflow.claim_tasks('default');
select workflow.complete_task(2, 1, '{"result": "clean"}');
select task_id, attempt, step_slug, input from workflow.claim_tasks('default');
select workflow.complete_task(3, 1, '{"saved": true}');

-- 5. The last completion finished the run; its output holds the outputs of the leaf steps.
select status, output, completed_at is not null as finished from workflow.runs
where run_id = '6f1c1f8e-0000-4000-8000-000000000001';
