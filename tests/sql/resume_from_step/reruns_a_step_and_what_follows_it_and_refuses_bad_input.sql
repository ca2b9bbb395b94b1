-- A completed run resumed from a middle step re-runs that step and its dependents only; a run
-- still running, an unknown step or run are refused and nothing is created.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3', '{}', now => sw_test.t0()) as done_run \gset
select sw_test.drain('default') \g /dev/null
select workflow.start_flow('chain3', '{}', now => sw_test.t0()) as live_run \gset
select count(*) as runs_before from workflow.runs \gset

select workflow.resume_from_step(:'done_run', 'b', now => sw_test.at(1)) as new_run \gset
select is((select jsonb_object_agg(step_slug, status) from workflow.step_states where run_id = :'new_run'),
    '{"a": "completed", "b": "started", "c": "created"}'::jsonb, 'a is carried; b runs again, then c');
select is((select output from workflow.step_states where run_id = :'new_run' and step_slug = 'a'),
    '{"step": "a"}'::jsonb, 'with its old output');

select throws_ok(format($$select workflow.resume_from_step(%L, 'b')$$, :'live_run'), 'WF013', null, 'a running run');
select throws_ok(format($$select workflow.resume_from_step(%L, 'nope')$$, :'done_run'), 'WF038', null, 'an unknown step');
select throws_ok($$select workflow.resume_from_step(gen_random_uuid(), 'b')$$, 'WF011', null, 'an unknown run');
select is((select count(*) from workflow.runs), :runs_before + 1::bigint, 'only the one resumed run was created');

select * from finish();
rollback;
