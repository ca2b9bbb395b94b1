-- prune finds old finished runs through runs_started_idx: no index of workflow.runs names an
-- end time, and a run that started before the cutoff but ended after it stays until it is old.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.register_flow('{"slug": "one", "steps": [{"slug": "a", "execution": "distributed"}]}') \g /dev/null
-- both runs start at t0; one completes at t0 + 1 s, the other at t0 + 30 s
select workflow.start_flow('one', now => sw_test.t0()) as early_run \gset
select workflow.start_flow('one', now => sw_test.t0()) as late_run \gset
select count(*) from workflow.claim_tasks('default', 10, now => sw_test.at(1)) \g /dev/null
select workflow.complete_task(sw_test.task_id(:'early_run', 'a'), 1, '1', sw_test.at(1)) \g /dev/null
select workflow.complete_task(sw_test.task_id(:'late_run', 'a'), 1, '1', sw_test.at(30)) \g /dev/null

select is(
    (select count(*) from pg_index i
     where i.indrelid = 'workflow.runs'::regclass
       and (pg_get_indexdef(i.indexrelid) ~ '(completed_at|failed_at)')),
    0::bigint, 'no index of runs names completed_at or failed_at (the final update writes them)');
select is((select p.runs_deleted from workflow.prune('20 seconds', now => sw_test.at(40)) p), 1,
    'cutoff t0 + 20 s: the run that ended at t0 + 1 s goes');
select is((select array_agg(run_id) from workflow.runs), array[:'late_run'::uuid],
    'the run that started before the cutoff but ended after it stays');
select is((select p.runs_deleted from workflow.prune('20 seconds', now => sw_test.at(51)) p), 1,
    'and goes once it ended before the cutoff');

select * from finish();
rollback;
