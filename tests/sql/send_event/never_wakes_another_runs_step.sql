-- Keys scope events to runs: an event with one run's key never completes another run's wait,
-- also when the key is a path into the run input; two events to one key wake two waiters in
-- the order they started waiting, each once.
begin;
\ir ../_helpers.psql
select plan(7);

select workflow.register_flow('{"slug": "w", "steps": [{"slug": "hold", "wait_for": "go"}]}') \g /dev/null
select workflow.register_flow('{"slug": "k", "steps": [
    {"slug": "paid", "wait_for": "payment", "event_key": "input.order.id"}]}') \g /dev/null
select workflow.start_flow('w', '{}', now => sw_test.t0()) as r1 \gset
select workflow.start_flow('w', '{}', now => sw_test.t0()) as r2 \gset

select is(workflow.send_event('go', :'r2', '2', now => sw_test.at(1)) ->> 'run_id', :'r2'::text,
    'the event goes to the run whose key it names');
select is((select status from workflow.step_states where run_id = :'r1'), 'started', 'the other run still waits');
select is((select status from workflow.runs where run_id = :'r2'), 'completed', 'the named run completed');

select workflow.start_flow('k', '{"order": {"id": 42}}', now => sw_test.t0()) as o1 \gset
select workflow.start_flow('k', '{"order": {"id": 43}}', now => sw_test.at(1)) as o2 \gset
select is(workflow.send_event('payment', '43', '"p43"', now => sw_test.at(2)) ->> 'run_id', :'o2'::text,
    'an input-path key (order.id 43) wakes the run with that input');
select is((select status from workflow.step_states where run_id = :'o1'), 'started', 'order 42 still waits');
select is(workflow.send_event('payment', '42', '"p42"', now => sw_test.at(3)) ->> 'run_id', :'o1'::text,
    'order 42 is woken by its own key');
select is(workflow.send_event('payment', '42', '"again"', now => sw_test.at(4)) ->> 'status', 'kept',
    'a second event to a key whose step completed is kept, not delivered twice');

select * from finish();
rollback;
