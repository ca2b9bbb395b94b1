-- An event sent before its wait step starts is kept (pending_events) and consumed, once, by the
-- step when it starts; an event past its keep is not consumed and the sweep drops it.
begin;
\ir ../_helpers.psql
select plan(8);

select workflow.register_flow('{"slug": "w", "steps": [
    {"slug": "a", "execution": "distributed"},
    {"slug": "hold", "depends_on": ["a"], "wait_for": "go"}]}') \g /dev/null
select workflow.start_flow('w', '{}', now => sw_test.t0()) as run_id \gset
select workflow.start_flow('w', '{}', now => sw_test.t0()) as late_run \gset

select is(workflow.send_event('go', :'run_id', '"early"', now => sw_test.t0()) ->> 'status',
    'kept', 'nobody waits yet: the event is kept');
select is(workflow.send_event('go', :'late_run', '"stale"', keep => interval '5 s', now => sw_test.t0()) ->> 'status',
    'kept', 'a second one, kept for 5 s');
select is(sw_test.drain('default', now => sw_test.at(10)), 2, 'both runs reach their wait step');
select is((select output from workflow.step_states where run_id = :'run_id' and step_slug = 'hold'),
    '"early"'::jsonb, 'the step took the kept event at its start');
select is((select status from workflow.runs where run_id = :'run_id'), 'completed', 'and its run completed');
select is((select status from workflow.step_states where run_id = :'late_run' and step_slug = 'hold'),
    'started', 'an event past its keep is not taken: the other step waits');
select is((select count(*) from workflow.pending_events where event_key = :'run_id'), 0::bigint,
    'the consumed event is gone');
select workflow._sweep(sw_test.at(10), true) \g /dev/null
select is((select count(*) from workflow.pending_events), 0::bigint, 'the sweep dropped the expired one');

select * from finish();
rollback;
