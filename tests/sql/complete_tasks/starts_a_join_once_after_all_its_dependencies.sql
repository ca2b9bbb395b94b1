-- Invariant 1 of docs/architecture.md (within one transaction; the concurrent proof is in the Python stress tests): in
-- a -> b1..b10 -> join, the join starts only when the last of its 10 dependencies completes,
-- and exactly once, whether they complete one by one or all in one batch. Its input carries
-- all ten outputs.
begin;
\ir ../_helpers.psql
select plan(12);

select sw_test.setup_flow('diamond') \g /dev/null
select workflow.start_flow('diamond', '{"n": 1}') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'a'), '"A"'), 'a completes');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.t0())), 10::bigint, 'the ten branches are claimed');

-- Complete b1..b9 one at a time.
select bool_and(sw_test.complete(sw_test.task_id(:'run_id', 'b' || i), to_jsonb(i))) as all_ok
from generate_series(1, 9) as i \gset
select ok(:'all_ok'::boolean, 'b1..b9 complete');
select results_eq(
    format('select status, remaining_deps from workflow.step_states where run_id = %L and step_slug = %L', :'run_id', 'join'),
    $$values ('created', 1)$$, 'after 9 of 10 the join still waits on one');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'join'), 0::bigint, 'and has no task');

select ok(sw_test.complete(sw_test.task_id(:'run_id', 'b10'), '10'), 'b10 completes');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'join'), 1::bigint,
    'the join has exactly one task');
select is(
    (select input from workflow.claim_tasks('default', now => sw_test.t0())),
    '{"run": {"n": 1}}'::jsonb || (select jsonb_object_agg('b' || i, i) from generate_series(1, 10) as i),
    'the join''s input carries the run input and all ten outputs');
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'join'), '"J"'), 'the join completes');
select is((select output from workflow.runs where run_id = :'run_id' and status = 'completed'), '{"join": "J"}'::jsonb,
    'the run completes with the join''s output');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing live is left for the run');

-- A second run: all ten branches in one batch.
select workflow.start_flow('diamond') as run2 \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select sw_test.complete(sw_test.task_id(:'run2', 'a'), '"A"') \g /dev/null
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select count(*) as n from workflow.complete_tasks(
    array(select sw_test.task_id(:'run2', 'b' || i) from generate_series(1, 10) as i),
    array(select 1 from generate_series(1, 10)),
    array(select to_jsonb(i) from generate_series(1, 10) as i),
    sw_test.t0()) \gset
select is((select count(*) from workflow.tasks where run_id = :'run2' and step_slug = 'join'), 1::bigint,
    'ten completions in one batch start the join once');

select * from finish();
rollback;
