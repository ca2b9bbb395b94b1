-- Local steps live on the reserved queue "local" and are run by the process executing the run:
-- a claim there needs for_run_id (WF010 without) and returns only that run's tasks; a
-- distributed worker on queue default never sees them.
begin;
\ir ../_helpers.psql
select plan(6);

select sw_test.setup_flow('local') \g /dev/null
-- The owner of both runs (a run with local steps needs one), alive at the claims' clock.
select workflow.register_worker('exec1', now => sw_test.t0()) \g /dev/null
select workflow.start_flow('local', owner => 'exec1', now => sw_test.t0()) as run1 \gset
select workflow.start_flow('local', owner => 'exec1', now => sw_test.t0()) as run2 \gset

select throws_ok($$select * from workflow.claim_tasks('local')$$, 'WF010', null, 'a local claim without for_run_id is WF010');
select results_eq(
    format('select run_id, step_slug from workflow.claim_tasks(%L, for_run_id => %L, now => sw_test.t0())', 'local', :'run1'),
    format('values (%L::uuid, %L)', :'run1', 'loc'),
    'for_run_id claims that run''s local task only');
select is(
    (select count(*) from workflow.claim_tasks('local', for_run_id => :'run1', now => sw_test.t0())), 0::bigint,
    'and nothing more for that run');
select is(
    (select status from workflow.tasks where task_id = sw_test.task_id(:'run2', 'loc')), 'queued',
    'the other run''s local task is untouched');
select results_eq(
    $$select step_slug from workflow.claim_tasks('default', now => sw_test.t0())$$,
    $$values ('dist'), ('dist')$$,
    'a distributed worker gets the distributed tasks of both runs, no local ones');
select results_eq(
    format('select run_id, step_slug from workflow.claim_tasks(%L, for_run_id => %L, now => sw_test.t0())', 'local', :'run2'),
    format('values (%L::uuid, %L)', :'run2', 'loc'),
    'the other run claims its own');

select * from finish();
rollback;
