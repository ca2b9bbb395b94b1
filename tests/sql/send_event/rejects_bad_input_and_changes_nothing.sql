-- Bad events are refused with their WF code and change nothing.
begin;
\ir ../_helpers.psql
select plan(8);

select workflow.register_flow('{"slug": "w", "steps": [{"slug": "hold", "wait_for": "go"}]}') \g /dev/null
select workflow.start_flow('w', '{}', now => sw_test.t0()) as run_id \gset

select throws_ok($$select workflow.send_event('bad name!', 'k')$$, 'WF031', null, 'a malformed event name');
select throws_ok($$select workflow.send_event(null, 'k')$$, 'WF031', null, 'a null event name');
select throws_ok($$select workflow.send_event('go', '')$$, 'WF031', null, 'an empty key');
select throws_ok($$select workflow.send_event('go', repeat('k', 201))$$, 'WF031', null, 'a key over 200 characters');
select throws_ok($$select workflow.send_event('go', 'k', keep => interval '0 s')$$, 'WF031', null, 'a keep of zero');
select throws_ok($$select workflow.send_event('nobody_waits', 'k')$$, 'WF032', null, 'a name no flow waits for');
select throws_ok(format($$select workflow.send_event('go', %L, to_jsonb(repeat('x', 1048577)))$$, :'run_id'),
    'WF033', null, 'a payload over 1 MiB');
select ok((select count(*) from workflow.pending_events) = 0
      and (select status from workflow.step_states where run_id = :'run_id') = 'started',
    'nothing was kept and the step still waits');

select * from finish();
rollback;
