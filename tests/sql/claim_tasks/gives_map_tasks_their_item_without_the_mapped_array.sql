-- A map task gets its element as item and an input that leaves out the array it maps over (the
-- item is the part of it that task needs), but keeps its other dependencies.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.register_flow('{"slug": "m", "steps": [
    {"slug": "cfg", "execution": "distributed"}, {"slug": "src", "execution": "distributed"},
    {"slug": "each", "execution": "distributed", "type": "map", "depends_on": ["cfg", "src"], "map_over": "src"}]}') \g /dev/null
select workflow.start_flow('m', '{"k": 1}') as run_id \gset
select count(*) as claimed from workflow.claim_tasks('default', now => sw_test.t0()) \gset
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'cfg'), '{"mode": "fast"}'), 'cfg completes');
select ok(sw_test.complete(sw_test.task_id(:'run_id', 'src'), '["p", "q"]'), 'src completes with an array');

select results_eq(
    $$select task_index, item, input from workflow.claim_tasks('default', now => sw_test.at(1)) order by task_index$$,
    $$values (0, '"p"'::jsonb, '{"run": {"k": 1}, "cfg": {"mode": "fast"}}'::jsonb),
             (1, '"q"'::jsonb, '{"run": {"k": 1}, "cfg": {"mode": "fast"}}'::jsonb)$$,
    'each map task: its element as item; run and cfg in the input, src left out'
);
select is((select count(*) from workflow.tasks where run_id = :'run_id' and step_slug = 'each'), 2::bigint,
    'one task per element');

select * from finish();
rollback;
