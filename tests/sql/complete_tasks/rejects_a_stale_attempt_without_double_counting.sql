-- A worker whose lease expired and whose task was claimed again holds a stale token: its
-- completion is rejected, alone or in a batch with fresh ones, and is never counted (the
-- step's remaining_tasks and the map output count each task once).
begin;
\ir ../_helpers.psql
select plan(8);

select workflow.register_flow('{"slug": "rm", "steps": [{"slug": "each", "execution": "distributed", "type": "map"}]}') \g /dev/null
select workflow.start_flow('rm', '["a", "b", "c"]') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select sw_test.task_id(:'run_id', 'each', 0) as t0, sw_test.task_id(:'run_id', 'each', 1) as t1,
       sw_test.task_id(:'run_id', 'each', 2) as t2 \gset
-- All leases expire at t0 + 60; the claim at that time re-claims all three as attempt 2.
select count(*) as n from workflow.claim_tasks('default', now => sw_test.at(60)) \gset

select is(workflow.complete_task(:t0, 1, '"stale"', sw_test.at(61)), false, 'the stale token is rejected');
select is((select remaining_tasks from workflow.step_states where run_id = :'run_id'), 3, 'nothing was counted');
select results_eq(
    format($$select accepted from workflow.complete_tasks(array[%s, %s]::bigint[], array[1, 2], array['"stale"', '"fresh"']::jsonb[], sw_test.at(62))$$, :t1, :t0),
    $$values (false), (true)$$, 'in a batch, the stale one is rejected and the fresh one accepted');
select is((select remaining_tasks from workflow.step_states where run_id = :'run_id'), 2, 'one task counted');
select is(workflow.complete_task(:t0, 2, '"again"', sw_test.at(63)), false, 'the fresh token is spent once used');
select is((select remaining_tasks from workflow.step_states where run_id = :'run_id'), 2, 'still one task counted');
select results_eq(
    format($$select accepted from workflow.complete_tasks(array[%s, %s]::bigint[], array[2, 2], array['"B"', '"C"']::jsonb[], sw_test.at(64))$$, :t1, :t2),
    $$values (true), (true)$$, 'the other two complete');
select is((select output from workflow.runs where run_id = :'run_id'), '{"each": ["fresh", "B", "C"]}'::jsonb,
    'the map output holds each task once, with the accepted outputs');

select * from finish();
rollback;
