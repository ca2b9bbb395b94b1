-- workflow_reader (migration 0005) reads run status, listings, flows, events and channel history,
-- and cannot claim, complete, start, cancel or send anything.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as run \gset
select workflow.send_with_notify('news', '{"n": 1}') \g /dev/null
grant usage on schema sw_test to workflow_reader;
grant execute on all functions in schema sw_test to workflow_reader;

set local role workflow_reader;
select is(workflow.get_run_status(:'run') ->> 'state', 'running', 'reads a run''s status');
select is((select count(*)::integer from workflow.list_workflow_runs()), 1, 'lists runs');
select is((select count(*)::integer from workflow.read_events(for_run_id => :'run')), 1, 'reads events');
select is((select count(*)::integer from workflow.read_channel('news')), 1, 'reads channel history');
select throws_ok($$select * from workflow.claim_tasks('default')$$, '42501', null, 'cannot claim');
select throws_ok(format('select workflow.complete_task(%s, 1, ''{}'')', sw_test.task_id(:'run', 'a')), '42501', null,
    'cannot complete');
select throws_ok($$select workflow.start_flow('chain3')$$, '42501', null, 'cannot start a run');
select throws_ok(format('select workflow.cancel_workflow_run(%L)', :'run'), '42501', null, 'cannot cancel a run');
select throws_ok($$select workflow.send_with_notify('news', '{}')$$, '42501', null, 'cannot send on a channel');

select * from finish();
rollback;
