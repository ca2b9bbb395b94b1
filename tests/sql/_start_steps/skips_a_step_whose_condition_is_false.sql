-- A false condition skips its step; the skip cascades to its dependents unless they say
-- run_if_skipped; a map over a skipped step maps over nothing; the run completes and its status
-- shows the skipped steps.
begin;
\ir ../_helpers.psql
select plan(11);

select workflow.register_flow('{"slug": "c", "steps": [
    {"slug": "review", "execution": "distributed"},
    {"slug": "publish", "depends_on": ["review"], "execution": "distributed",
     "condition": {"path": "review.approved", "op": "eq", "value": true}},
    {"slug": "announce", "depends_on": ["publish"], "execution": "distributed"},
    {"slug": "notify", "depends_on": ["publish"], "execution": "distributed", "type": "map", "run_if_skipped": true},
    {"slug": "archive", "depends_on": ["review"], "execution": "distributed",
     "condition": {"any": [{"path": "input.keep", "op": "exists"},
                           {"not": {"path": "review.score", "op": "lt", "value": 5}}]}},
    {"slug": "report", "depends_on": ["announce", "notify", "archive"], "execution": "distributed", "run_if_skipped": true}]}') \g /dev/null

-- Rejected: publish is skipped, announce with it; notify (run_if_skipped) maps over nothing.
select workflow.start_flow('c', '{}', now => sw_test.t0()) as no_run \gset
select workflow.claim_tasks('default', 1, now => sw_test.t0()) \g /dev/null
select sw_test.complete(sw_test.task_id(:'no_run', 'review'), '{"approved": false, "score": 3}') \g /dev/null
select is((select status from workflow.step_states where run_id = :'no_run' and step_slug = 'publish'), 'skipped',
    'a false condition skips the step');
select is((select status from workflow.step_states where run_id = :'no_run' and step_slug = 'announce'), 'skipped',
    'its dependent is skipped too');
select is((select output from workflow.step_states where run_id = :'no_run' and step_slug = 'notify'), '[]'::jsonb,
    'a run_if_skipped map over a skipped step maps over nothing');
select is((select status from workflow.step_states where run_id = :'no_run' and step_slug = 'archive'), 'skipped',
    'any/not/exists/lt: score 3 and no keep is false');
select is((select count(*) from workflow.tasks where run_id = :'no_run' and step_slug in ('publish', 'announce', 'archive')),
    0::bigint, 'skipped steps have no tasks');
select is(sw_test.drain('default'), 1, 'only report runs (run_if_skipped)');
select is((select status from workflow.runs where run_id = :'no_run'), 'completed', 'the run completes');
select is(workflow.get_run_status(:'no_run') -> 'skipped_steps', '3'::jsonb, 'its status counts the skipped steps');
select is(workflow.get_run_status(:'no_run') ->> 'percentage', '100.0', 'and reads 100%');

-- Approved: every step runs.
select workflow.start_flow('c', '{"keep": 1}', now => sw_test.t0()) as yes_run \gset
select workflow.claim_tasks('default', 1, now => sw_test.t0()) \g /dev/null
select sw_test.complete(sw_test.task_id(:'yes_run', 'review'), '{"approved": true, "score": 3}') \g /dev/null
select is((select array_agg(step_slug order by step_slug) from workflow.claim_tasks('default', 10, now => sw_test.t0())),
    array['archive', 'publish'], 'a true condition runs the step (exists: input.keep is there)');
select is((select count(*) from workflow.step_states where run_id = :'yes_run' and status = 'skipped'), 0::bigint,
    'nothing is skipped');

select * from finish();
rollback;
