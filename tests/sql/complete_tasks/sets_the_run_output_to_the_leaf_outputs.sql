-- The run output is an object of the outputs of its leaf steps (steps nothing depends on),
-- keyed by step; intermediate outputs are not in it. A map leaf contributes its array.
begin;
\ir ../_helpers.psql
select plan(3);

select workflow.register_flow('{"slug": "leaves", "steps": [
    {"slug": "a", "execution": "distributed"}, {"slug": "b", "execution": "distributed", "depends_on": ["a"]}, {"slug": "c", "execution": "distributed", "depends_on": ["a"]},
    {"slug": "m", "execution": "distributed", "type": "map", "depends_on": ["a"]}]}') \g /dev/null
select workflow.start_flow('leaves') as run_id \gset

create function pg_temp.out(step_slug text, task_index integer, input jsonb, item jsonb) returns jsonb
language sql as $$ select case step_slug when 'a' then '["x", "y"]'::jsonb else to_jsonb(step_slug || coalesce(item #>> '{}', '')) end $$;
select is(sw_test.drain('default', 'pg_temp.out'), 5, 'five tasks ran (a, b, c and two map tasks)');
select is((select output from workflow.runs where run_id = :'run_id' and status = 'completed'),
    '{"b": "b", "c": "c", "m": ["mx", "my"]}'::jsonb, 'the run output holds the three leaves, not a');
select is(sw_test.live_work(:'run_id'), 0::bigint, 'nothing live is left for the run');

select * from finish();
rollback;
