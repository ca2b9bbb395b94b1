-- A map over an empty array has no tasks: it completes at once with output [] and the
-- completion cascades in the same transaction (its dependent starts; a run whose last step
-- it was completes), leaving nothing live.
begin;
\ir ../_helpers.psql
select plan(7);

-- Mapped over a step's output.
select sw_test.setup_flow('map') \g /dev/null
select workflow.start_flow('map') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'src'), '[]'), 'src completes with an empty array');
select results_eq(
    format('select status, output, initial_tasks from workflow.step_states where run_id = %L and step_slug = %L', :'run_id', 'each'),
    $$values ('completed', '[]'::jsonb, 0)$$, 'the map step completed at once with []');
select results_eq(
    format('select step_slug, input from workflow.claim_tasks(%L, now => sw_test.t0())', 'default'),
    $$values ('join', '{"run": {}, "each": []}'::jsonb)$$, 'its dependent started with the empty array');

-- Mapped over the run input, as the only step: the run completes inside start_flow.
select workflow.register_flow('{"slug": "solo", "steps": [{"slug": "each", "type": "map", "execution": "distributed"}]}') \g /dev/null
select workflow.start_flow('solo', '[]') as solo_run \gset
select results_eq(
    format('select status, remaining_steps, output from workflow.runs where run_id = %L', :'solo_run'),
    $$values ('completed', 0, '{"each": []}'::jsonb)$$, 'a run whose only step maps over [] completes at start');
select is(sw_test.live_work(:'solo_run'), 0::bigint, 'and leaves nothing live');

-- A root map over [] followed by a step: that step starts at once.
select sw_test.setup_flow('root_map') \g /dev/null
select workflow.start_flow('root_map', '[]') as rm_run \gset
select is((select count(*) from workflow.tasks where run_id = :'rm_run' and step_slug = 'join' and status = 'queued'), 1::bigint,
    'the step after an empty root map is enqueued at start');
select sw_test.drain('default') \g /dev/null
select results_eq(
    format('select status, output from workflow.runs where run_id = %L', :'rm_run'),
    $$values ('completed', '{"join": {"step": "join"}}'::jsonb)$$, 'and the run finishes with it');

select * from finish();
rollback;
