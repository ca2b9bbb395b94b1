-- get_flow returns {"slug", "timeout", "steps"} with every step normalised, in the order they
-- were added, in the form register_flow accepts; an unknown flow is WF002.
begin;
\ir ../_helpers.psql
select plan(4);

select workflow.create_flow('f', 120) \g /dev/null
select workflow.add_step('f', 'a', execution => 'distributed', queue_name => 'q1') \g /dev/null
select workflow.add_step('f', 'm', array['a'], 'map', max_attempts => 1) \g /dev/null

select is(
    workflow.get_flow('f'),
    '{"slug": "f", "timeout": 120, "steps": [
        {"slug": "a", "depends_on": [], "type": "single", "map_over": null, "execution": "distributed",
         "queue": "q1", "resources": [], "max_attempts": 3, "base_delay": 1, "timeout": 60, "start_delay": 0},
        {"slug": "m", "depends_on": ["a"], "type": "map", "map_over": "a", "execution": "local",
         "queue": "local", "resources": [], "max_attempts": 1, "base_delay": 1, "timeout": 60, "start_delay": 0}]}'::jsonb,
    'the whole definition with defaults filled in'
);
select workflow.create_flow('empty') \g /dev/null
select is(workflow.get_flow('empty'), '{"slug": "empty", "timeout": null, "steps": []}'::jsonb, 'a flow without steps');
select lives_ok($$select workflow.register_flow(workflow.get_flow('f'))$$, 'register_flow accepts it as the same shape');
select throws_ok($$select workflow.get_flow('nope')$$, 'WF002', null, 'an unknown flow is WF002');

select * from finish();
rollback;
