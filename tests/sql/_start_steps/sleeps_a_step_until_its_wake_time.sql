-- The sleep option makes a step's tasks claimable only at their wake time: whole seconds, a
-- number from a dependency's output, or a timestamp from the run input; a sleep path that does
-- not resolve fails the run.
begin;
\ir ../_helpers.psql
select plan(8);

select workflow.register_flow('{"slug": "s", "steps": [
    {"slug": "a", "execution": "distributed"},
    {"slug": "fixed", "depends_on": ["a"], "execution": "distributed", "sleep": 30},
    {"slug": "computed", "depends_on": ["a"], "execution": "distributed", "sleep": "a.wait"},
    {"slug": "until", "depends_on": ["a"], "execution": "distributed", "sleep": "input.at"}]}') \g /dev/null
select workflow.start_flow('s', jsonb_build_object('at', sw_test.at(50)), now => sw_test.t0()) as run_id \gset
select workflow.claim_tasks('default', 1, now => sw_test.t0()) \g /dev/null
select sw_test.complete(sw_test.task_id(:'run_id', 'a'), '{"wait": 10}') \g /dev/null

select is((select wake_at from workflow.step_states where run_id = :'run_id' and step_slug = 'fixed'),
    sw_test.at(30), 'sleep 30 wakes 30 s after the step started');
select is((select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(9))), 0::bigint,
    'nothing is claimable while they sleep');
select is((select array_agg(step_slug) from workflow.claim_tasks('default', 10, now => sw_test.at(10))),
    array['computed'], 'a sleep read from the dependency output (10 s) ends first');
select is((select array_agg(step_slug) from workflow.claim_tasks('default', 10, now => sw_test.at(30))),
    array['fixed'], 'then the fixed one');
select is((select array_agg(step_slug) from workflow.claim_tasks('default', 10, now => sw_test.at(50))),
    array['until'], 'a timestamp from the input wakes at that time');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and status = 'started'), 3::bigint,
    'each sleeping step was claimed once');

select workflow.start_flow('s', '{"at": "not a time"}', now => sw_test.t0()) as bad_run \gset
select workflow.claim_tasks('default', 1, now => sw_test.at(60)) \g /dev/null
select sw_test.complete(sw_test.task_id(:'bad_run', 'a'), '{"wait": "x"}', sw_test.at(60)) \g /dev/null
select is((select status from workflow.runs where run_id = :'bad_run'), 'failed', 'an unresolvable sleep fails the run');
select is(sw_test.live_work(:'bad_run'), 0::bigint, 'and leaves nothing live');

select * from finish();
rollback;
