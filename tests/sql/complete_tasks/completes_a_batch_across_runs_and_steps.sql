-- One complete_tasks call may carry tasks of several runs and steps: each is accepted, each run
-- advances on its own, and the result rows come back in the order of the input arrays.
begin;
\ir ../_helpers.psql
select plan(4);

select sw_test.setup_flow('chain3') \g /dev/null
select sw_test.setup_flow('root_map') \g /dev/null
select workflow.start_flow('chain3') as r1 \gset
select workflow.start_flow('root_map', '[1, 2]') as r2 \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select sw_test.task_id(:'r1', 'a') as a, sw_test.task_id(:'r2', 'each', 0) as e0, sw_test.task_id(:'r2', 'each', 1) as e1 \gset

select results_eq(
    format('select task_id, accepted from workflow.complete_tasks(array[%s, %s, %s]::bigint[], array[1, 1, 1], array[%L, %L, %L]::jsonb[], sw_test.t0())',
        :e1, :a, :e0, '"e1"', '"a"', '"e0"'),
    format('values (%s::bigint, true), (%s::bigint, true), (%s::bigint, true)', :e1, :a, :e0),
    'all three are accepted, reported in input order');
select is((select count(*) from workflow.tasks where run_id = :'r1' and step_slug = 'b'), 1::bigint, 'the chain advanced to b');
select is((select output from workflow.step_states where run_id = :'r2' and step_slug = 'each'), '["e0", "e1"]'::jsonb,
    'the map completed in index order');
select is((select count(*) from workflow.tasks where run_id = :'r2' and step_slug = 'join'), 1::bigint, 'and its join started');

select * from finish();
rollback;
