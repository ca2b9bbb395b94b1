-- Resuming a run that is not paused changes nothing (no event, no error); resuming twice records
-- one run_resumed event; resuming a run that ended is WF013; an unknown run is WF011.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0()) as run_id \gset
select lives_ok(format('select workflow.resume_workflow_run(%L)', :'run_id'), 'resuming a running run is not an error');
select is((select count(*) from workflow.events where run_id = :'run_id' and event = 'run_resumed'), 0::bigint,
    'and records nothing');

select workflow.pause_workflow_run(:'run_id') \g /dev/null
select workflow.resume_workflow_run(:'run_id') \g /dev/null
select workflow.resume_workflow_run(:'run_id') \g /dev/null
select is(
    (select array_agg(event order by event_id) from workflow.events where run_id = :'run_id' and event in ('run_paused', 'run_resumed')),
    array['run_paused', 'run_resumed'], 'pause then two resumes: one run_resumed event');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.t0())), 1::bigint,
    'the resumed run''s work is claimable');

select workflow.cancel_workflow_run(:'run_id') \g /dev/null
select throws_ok(format('select workflow.resume_workflow_run(%L)', :'run_id'), 'WF013', null, 'a cancelled run cannot be resumed');
select throws_ok(format('select workflow.resume_workflow_run(%L)', gen_random_uuid()), 'WF011', null, 'an unknown run is WF011');

select * from finish();
rollback;
