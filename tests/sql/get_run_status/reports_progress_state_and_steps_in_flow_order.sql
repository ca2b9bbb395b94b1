-- get_run_status reports the Elixir library's three statuses (in_progress / completed / failed), the finer
-- state (running / paused / ...), step counts and percentage, and every step in flow order with
-- its tasks, attempts and timings. An unknown run is WF011.
begin;
\ir ../_helpers.psql
select plan(14);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', '{"n": 1}', now => sw_test.t0()) as run_id \gset

select is(workflow.get_run_status(:'run_id') ->> 'status', 'in_progress', 'a new run is in_progress');
select is(workflow.get_run_status(:'run_id') ->> 'state', 'running', 'and running');
select is(workflow.get_run_status(:'run_id') -> 'total_steps', '3'::jsonb, 'three steps in total');
select is(workflow.get_run_status(:'run_id') -> 'input', '{"n": 1}'::jsonb, 'the input is reported');
select is(
    (select jsonb_agg(s ->> 'step') from jsonb_array_elements(workflow.get_run_status(:'run_id') -> 'steps') as s),
    '["a", "b", "c"]'::jsonb, 'steps are listed in flow order');

select task_id as a, attempt from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select workflow.complete_task(:a, :attempt, '{"a": true}', sw_test.at(1)) \g /dev/null

select is(workflow.get_run_status(:'run_id') -> 'completed_steps', '1'::jsonb, 'one step completed');
select is((workflow.get_run_status(:'run_id') ->> 'percentage')::numeric, 33.3, 'percentage of steps, one decimal');
select is((workflow.get_run_status(:'run_id') -> 'steps' -> 0) - 'started_at' - 'completed_at',
    '{"step": "a", "status": "completed", "type": "single", "tasks": 1, "tasks_completed": 1, "attempts": 1,
      "failed_at": null, "error": null, "waiting_on_limits": [], "waiting_for_worker": false,
      "waiting_for_event": null, "sleeping_until": null}'::jsonb,
    'a completed step: its tasks, attempts and no error');
select is((workflow.get_run_status(:'run_id') -> 'steps' -> 0 ->> 'completed_at')::timestamptz, sw_test.at(1),
    'the step''s completion time is reported');
select is(workflow.get_run_status(:'run_id') -> 'steps' -> 2 ->> 'status', 'created', 'c still waits on b');

select workflow.pause_workflow_run(:'run_id') \g /dev/null
select is(
    (select array[s ->> 'status', s ->> 'state'] from workflow.get_run_status(:'run_id') as s),
    array['in_progress', 'paused'], 'a paused run is in_progress in the Elixir library''s terms, paused in state');
select workflow.resume_workflow_run(:'run_id') \g /dev/null

select is(sw_test.drain('default'), 2, 'b and c run');
select is(
    (select array[s ->> 'status', s ->> 'state', s ->> 'percentage', s ->> 'completed_steps'] from workflow.get_run_status(:'run_id') as s),
    array['completed', 'completed', '100.0', '3'], 'a completed run: 3 of 3 steps, 100 percent');

select throws_ok(format('select workflow.get_run_status(%L)', gen_random_uuid()), 'WF011', null, 'an unknown run is WF011');

select * from finish();
rollback;
