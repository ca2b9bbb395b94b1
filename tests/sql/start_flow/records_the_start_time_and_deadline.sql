-- started_at is the (injectable) start time; deadline_at is started_at + the flow's timeout,
-- or null for a flow without one. Root tasks are queued at the start time.
begin;
\ir ../_helpers.psql
select plan(5);

select workflow.register_flow('{"slug": "timed", "timeout": 90, "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('timed', now => sw_test.t0()) as timed_run \gset
select workflow.start_flow('chain3', now => sw_test.t0()) as plain_run \gset

select is((select started_at from workflow.runs where run_id = :'timed_run'), sw_test.t0(), 'started_at is the injected time');
select is((select deadline_at from workflow.runs where run_id = :'timed_run'), sw_test.at(90), 'deadline_at = start + flow timeout');
select is((select deadline_at from workflow.runs where run_id = :'plain_run'), null, 'no deadline without a flow timeout');
select is((select queued_at from workflow.tasks where run_id = :'timed_run'), sw_test.t0(), 'root tasks are queued at the start time');
select is((select started_at from workflow.step_states where run_id = :'timed_run' and step_slug = 'a'), sw_test.t0(),
    'root steps start at the start time');

select * from finish();
rollback;
