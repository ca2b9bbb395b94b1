-- run_state maps (status, paused_at, cancelled_at) to running, paused, cancelled, completed or
-- failed; run_status reports started as in_progress; both are inlined by the planner (no
-- function call per row), and get_run_status and list_workflow_runs agree with them.
begin;
\ir ../_helpers.psql
select plan(10);

select is(workflow.run_state('started', null, null), 'running', 'a started run is running');
select is(workflow.run_state('started', now(), null), 'paused', 'a started run with paused_at is paused');
select is(workflow.run_state('failed', null, now()), 'cancelled', 'a run with cancelled_at is cancelled');
select is(workflow.run_state('failed', now(), now()), 'cancelled', 'cancelled wins over paused');
select is(workflow.run_state('completed', null, null), 'completed', 'an ended run is its status');
select is(workflow.run_status('started'), 'in_progress', 'started is reported as in_progress');
select is(workflow.run_status('failed'), 'failed', 'other statuses are themselves');

create temporary table plan_lines (line text);
do $$
declare
    v_line text;
begin
    for v_line in execute 'explain (verbose, costs off) select workflow.run_state(r.status, r.paused_at, r.cancelled_at), workflow.run_status(r.status) from workflow.runs r' loop
        insert into plan_lines values (v_line);
    end loop;
end
$$;
select ok(not exists (select 1 from plan_lines where line ~ 'run_state|run_status')
    and exists (select 1 from plan_lines where line ~ 'CASE'),
    'both are inlined into the query as CASE expressions');

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', '{}', run_id => '00000000-0000-4000-8000-000000000001') \g /dev/null
select workflow.pause_workflow_run('00000000-0000-4000-8000-000000000001') \g /dev/null
select is(workflow.get_run_status('00000000-0000-4000-8000-000000000001') ->> 'state', 'paused',
    'get_run_status reports the state run_state names');
select is((select l.state from workflow.list_workflow_runs() l), 'paused',
    'list_workflow_runs reports the same state');

select * from finish();
rollback;
