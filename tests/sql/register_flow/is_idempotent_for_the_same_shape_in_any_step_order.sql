-- Clients register their code-defined flows on every start, so registering the same shape again
-- is a no-op, whatever the order of the steps, of depends_on and of resources, and whether
-- defaults are spelt out or omitted. Steps given before their dependencies are stored in
-- dependency order.
begin;
\ir ../_helpers.psql
select plan(7);

select is(
    workflow.register_flow('{"slug": "f", "timeout": 300, "steps": [
        {"slug": "c", "execution": "distributed", "depends_on": ["b", "a"], "resources": ["ssd", "gpu"]},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"], "type": "map"},
        {"slug": "a", "execution": "distributed"}]}'),
    'f', 'a first registration returns the slug'
);
select results_eq(
    $$select step_slug from workflow.steps where flow_slug = 'f' order by step_index$$,
    $$values ('a'), ('b'), ('c')$$,
    'steps are stored in dependency order'
);
select workflow.get_flow('f') as before \gset
select is(
    workflow.register_flow('{"slug": "f", "timeout": 300, "steps": [
        {"slug": "a", "type": "single", "execution": "distributed", "queue": "default", "max_attempts": 3,
         "base_delay": 1, "timeout": 60, "start_delay": 0, "resources": [], "depends_on": []},
        {"slug": "c", "execution": "distributed", "depends_on": ["a", "b"], "resources": ["gpu", "ssd"]},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"], "type": "map", "map_over": "a"}]}'),
    'f', 'the same shape in another order, with defaults spelt out, is accepted'
);
select is(workflow.get_flow('f'), :'before'::jsonb, 'and changes nothing');
select is((select count(*) from workflow.steps where flow_slug = 'f'), 3::bigint, 'no step was added');
select is((select count(*) from workflow.flows), 1::bigint, 'no flow was added');
select lives_ok(
    $$select workflow.register_flow(workflow.get_flow('f'))$$,
    'get_flow output registers as the same shape'
);

select * from finish();
rollback;
