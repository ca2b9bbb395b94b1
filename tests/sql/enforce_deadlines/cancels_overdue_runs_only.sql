-- enforce_deadlines cancels the runs whose deadline has passed, with the reason 'deadline
-- exceeded', and cleans them up like a cancel; runs before their deadline, runs without one and
-- runs that already ended are untouched. A deadline comes from start_flow's timeout_seconds or
-- the flow's timeout. max_runs bounds one call.
begin;
\ir ../_helpers.psql
select plan(11);

select workflow.register_flow('{"slug": "timed", "timeout": 100, "steps": [{"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed", "depends_on": ["a"]}]}') \g /dev/null
select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('timed', timeout_seconds => 10, now => sw_test.t0()) as short_run \gset
select workflow.start_flow('timed', now => sw_test.t0()) as flow_default_run \gset
select workflow.start_flow('chain3', now => sw_test.t0()) as no_deadline_run \gset
select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('one', timeout_seconds => 5, now => sw_test.t0()) as done_run \gset
-- the done run completes before its deadline; then every root task of the others is claimed, so
-- step a of the short run is running on a worker when its deadline passes
select sw_test.drain('default', for_run_id => :'done_run', now => sw_test.at(1)) \g /dev/null
select count(*) from workflow.claim_tasks('default', 100, now => sw_test.at(2)) \g /dev/null

select is((select deadline_at from workflow.runs where run_id = :'short_run'), sw_test.at(10), 'timeout_seconds sets the deadline');
select is((select deadline_at from workflow.runs where run_id = :'flow_default_run'), sw_test.at(100), 'else the flow''s timeout does');
select is((select status from workflow.runs where run_id = :'done_run'), 'completed', 'one run completed in time');

select is(workflow.enforce_deadlines(sw_test.at(9)), 0, 'before any deadline nothing is cancelled');
select is(workflow.enforce_deadlines(sw_test.at(11)), 1, 'after 10 s one run is overdue');
select is(
    (select array[status, error_message, (cancelled_at is not null)::text] from workflow.runs where run_id = :'short_run'),
    array['failed', 'deadline exceeded', 'true'], 'it is cancelled with the reason deadline exceeded');
select is(sw_test.live_work(:'short_run'), 0::bigint, 'and leaves no live message or task');
select is(workflow.extend_lease(sw_test.task_id(:'short_run', 'a'), 1, 60, sw_test.at(12)), false,
    'the worker running its step is told to stop at its next lease renewal');
select is(
    (select array_agg(status order by run_id) from workflow.runs where run_id in (:'flow_default_run', :'no_deadline_run', :'done_run')),
    (select array_agg(s order by r) from (values (:'flow_default_run'::uuid, 'started'), (:'no_deadline_run'::uuid, 'started'), (:'done_run'::uuid, 'completed')) as v (r, s)),
    'the others are untouched');

-- max_runs: three overdue runs are cancelled two, then one, at a time
select workflow.start_flow('timed', timeout_seconds => 1, now => sw_test.t0()) from generate_series(1, 2) \g /dev/null
select is(workflow.enforce_deadlines(sw_test.at(200), max_runs => 2), 2, 'max_runs bounds one call');
select is(workflow.enforce_deadlines(sw_test.at(200), max_runs => 2), 1, 'the next call takes the rest');

select * from finish();
rollback;
