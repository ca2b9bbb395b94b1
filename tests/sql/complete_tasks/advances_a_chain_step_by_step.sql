-- Completing a step starts the next one in the same transaction: in a -> b -> c each completion
-- enqueues exactly the next task; the last completes the run with the leaf's output, and
-- nothing live is left.
begin;
\ir ../_helpers.psql
select plan(9);

select sw_test.setup_flow('chain3') \g /dev/null
select workflow.start_flow('chain3') as run_id \gset

select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'a'), '"A"'), 'a completes');
select results_eq(
    format('select step_slug, status from workflow.tasks where run_id = %L order by task_id', :'run_id'),
    $$values ('a', 'completed'), ('b', 'queued')$$, 'b is enqueued, c is not');
select results_eq(
    format('select step_slug, remaining_deps from workflow.step_states where run_id = %L order by step_slug', :'run_id'),
    $$values ('a', 0), ('b', 0), ('c', 1)$$, 'b''s counter reached 0, c still waits on b');
select is((select remaining_steps from workflow.runs where run_id = :'run_id'), 2, 'two steps to go');

select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'b'), '"B"'), 'b completes');
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'c' and status = 'queued'), 1::bigint,
    'c is enqueued');
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'c'), '"C"', sw_test.at(5)), 'c completes');
select results_eq(
    format('select status, remaining_steps, output, completed_at from workflow.runs where run_id = %L', :'run_id'),
    format($$values ('completed', 0, '{"c": "C"}'::jsonb, %L::timestamptz)$$, sw_test.at(5)),
    'the run completes with the leaf output');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing live is left for the run');

select * from finish();
rollback;
