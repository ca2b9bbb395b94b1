-- A map step's output is the array of its task outputs in index order, whatever order the tasks
-- complete in; the step completes with the last task, and its dependent gets the array.
begin;
\ir ../_helpers.psql
select plan(5);

select sw_test.setup_flow('map') \g /dev/null
select workflow.start_flow('map') as run_id \gset
select count(*) as n from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'src'), '[1, 2, 3, 4, 5]'), 'src completes with five elements');
select is((select count(*) from workflow.claim_tasks('default', now => sw_test.t0())), 5::bigint, 'five map tasks are claimed');

-- Complete in the order 4, 2, 0, 3, 1 (one statement each, at increasing times) with
-- output = element * 10.
do $$
declare
    i integer;
    n integer := 0;
begin
    foreach i in array array[4, 2, 0, 3, 1] loop
        n := n + 1;
        if not sw_test.complete(
            (select t.task_id from workflow.tasks t where t.step_slug = 'each' and t.task_index = i),
            to_jsonb(10 * (i + 1)), sw_test.at(n)) then
            raise exception 'completion of map task % was rejected', i;
        end if;
    end loop;
end;
$$;
select results_eq(
    format('select task_index from workflow.tasks where run_id = %L and step_slug = %L order by completed_at', :'run_id', 'each'),
    $$values (4), (2), (0), (3), (1)$$, 'the tasks completed out of index order');
select results_eq(
    format('select status, output from workflow.step_states where run_id = %L and step_slug = %L', :'run_id', 'each'),
    $$values ('completed', '[10, 20, 30, 40, 50]'::jsonb)$$, 'the map output is in index order');
select is((select input from workflow.claim_tasks('default', now => sw_test.t0())),
    '{"run": {}, "each": [10, 20, 30, 40, 50]}'::jsonb, 'the dependent gets the whole array');

select * from finish();
rollback;
