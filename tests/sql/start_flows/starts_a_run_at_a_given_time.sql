-- start_at in the future: the run is 'scheduled' (state and listing say so), nothing is
-- claimable, the sweep starts it once start_at has come, and it can be cancelled before; a
-- start_at in the past starts the run now.
begin;
\ir ../_helpers.psql
select plan(8);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', now => sw_test.t0(), start_at => sw_test.at(60)) as later \gset
select is(workflow.get_run_status(:'later', now => sw_test.at(1)) ->> 'state', 'scheduled', 'get_run_status says scheduled');
select is((select state from workflow.list_workflow_runs('scheduled') where run_id = :'later'), 'scheduled',
    'list_workflow_runs lists it as scheduled');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.at(30))), 0::bigint, 'nothing is claimable before start_at');
select is((select step_slug from workflow.claim_tasks('default', now => sw_test.at(61))), 'a', 'after start_at its root task is claimable');
select is(workflow.get_run_status(:'later', now => sw_test.at(62)) ->> 'state', 'running', 'and it is running');

select workflow.start_flow('chain3', now => sw_test.t0(), start_at => sw_test.at(600)) as cancelled \gset
select workflow.cancel_workflow_run(:'cancelled', now => sw_test.at(10)) \g /dev/null
select is(workflow._start_due_runs(sw_test.at(700)), 0, 'a run cancelled before its start never starts');
select is(workflow.get_run_status(:'cancelled', now => sw_test.at(701)) ->> 'state', 'cancelled', 'it is cancelled');
select workflow.start_flow('chain3', now => sw_test.at(800), start_at => sw_test.at(1)) as past \gset
select is((select status from workflow.runs where run_id = :'past'), 'started', 'a start_at in the past starts now');

select * from finish();
rollback;
