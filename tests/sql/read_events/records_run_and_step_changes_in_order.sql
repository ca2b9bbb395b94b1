-- The state machine records run and step state changes in workflow.events, in order:
-- run_started, step_completed per step, run_completed; a failure records step_failed and
-- run_failed; pause, resume and cancel record theirs. read_events reads after an id, for one run
-- or all, and bounds the page (WF010).
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as ok_run \gset
select sw_test.drain('default', for_run_id => :'ok_run', now => sw_test.at(1)) \g /dev/null
select is(
    (select array_agg(event || coalesce(':' || step_slug, '') order by event_id) from workflow.read_events(for_run_id => :'ok_run')),
    array['run_started', 'step_completed:a', 'step_completed:b', 'step_completed:c', 'run_completed'],
    'a completed chain: started, each step, completed');

select workflow.register_flow('{"slug": "doomed", "steps": [{"slug": "only", "execution": "distributed", "max_attempts": 1}]}') \g /dev/null
select workflow.start_flow('doomed', now => sw_test.t0()) as bad_run \gset
select task_id, attempt from workflow.claim_tasks('default', 10, for_run_id => :'bad_run', now => sw_test.at(1)) \gset
select workflow.fail_task(:task_id, :attempt, 'boom', sw_test.at(2)) \g /dev/null
select is(
    (select array_agg(event || coalesce(':' || step_slug, '') order by event_id) from workflow.read_events(for_run_id => :'bad_run')),
    array['run_started', 'step_failed:only', 'run_failed'], 'a failed run: step_failed then run_failed');

select workflow.start_flow('chain3', now => sw_test.t0()) as ctl_run \gset
select workflow.pause_workflow_run(:'ctl_run', sw_test.at(1)) \g /dev/null
select workflow.resume_workflow_run(:'ctl_run', sw_test.at(2)) \g /dev/null
select workflow.cancel_workflow_run(:'ctl_run', now => sw_test.at(3)) \g /dev/null
select is(
    (select array_agg(event order by event_id) from workflow.read_events(for_run_id => :'ctl_run')),
    array['run_started', 'run_paused', 'run_resumed', 'run_cancelled'], 'pause, resume and cancel are recorded');

select min(event_id) as first_event from workflow.events \gset
select ok((select bool_and(event_id > :first_event) from workflow.read_events(after_id => :first_event)), 'after_id reads only later events');
select is((select count(*) from workflow.read_events(max_events => 2)), 2::bigint, 'max_events bounds the page');
select throws_ok($$select * from workflow.read_events(max_events => 0)$$, 'WF010', null, 'max_events 0 is WF010');

select * from finish();
rollback;
