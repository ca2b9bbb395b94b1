-- add_step with only a slug stores a single, local step on the reserved queue "local" with 3
-- attempts, 1 s base delay, 60 s lease, no start delay and no resources; a distributed step
-- that names no queue goes on queue "default". It returns the normalised step as get_flow shows
-- it, and creates the step's queue.
begin;
\ir ../_helpers.psql
select plan(9);

select workflow.create_flow('f') \g /dev/null
select is(
    workflow.add_step('f', 'a'),
    '{"slug": "a", "depends_on": [], "type": "single", "map_over": null, "execution": "local",
      "queue": "local", "resources": [], "max_attempts": 3, "base_delay": 1, "timeout": 60, "start_delay": 0}'::jsonb,
    'every omitted option takes its default: a local step'
);
select results_eq(
    $$select step_type, execution, queue_name, max_attempts, base_delay_seconds, timeout_seconds,
             start_delay_seconds, required_resources, deps_count, step_index
      from workflow.steps where flow_slug = 'f' and step_slug = 'a'$$,
    $$values ('single', 'local', 'local', 3, 1, 60, 0, '{}'::text[], 0, 0)$$,
    'the stored row carries the defaults'
);
select is(
    workflow.add_step('f', 'm', array['a'], 'map'),
    '{"slug": "m", "depends_on": ["a"], "type": "map", "map_over": "a", "execution": "local",
      "queue": "local", "resources": [], "max_attempts": 3, "base_delay": 1, "timeout": 60, "start_delay": 0}'::jsonb,
    'a map step with one dependency maps over it'
);
select is(
    workflow.add_step('f', 'd', array['a'], execution => 'distributed') ->> 'queue', 'default',
    'a distributed step without a queue is placed on queue default'
);
select is(
    workflow.add_step('f', 'z', array['m', 'a', 'a'], execution => 'distributed', queue_name => 'gpu_q',
        resources => array['gpu', 'big', 'gpu'], max_attempts => 1, base_delay => 0, timeout => 5, start_delay => 7),
    '{"slug": "z", "depends_on": ["a", "m"], "type": "single", "map_over": null, "execution": "distributed",
      "queue": "gpu_q", "resources": ["big", "gpu"], "max_attempts": 1, "base_delay": 0, "timeout": 5, "start_delay": 7}'::jsonb,
    'given options are kept; depends_on and resources are sorted and deduplicated'
);
select is((select deps_count from workflow.steps where flow_slug = 'f' and step_slug = 'z'), 2, 'deps_count counts distinct dependencies');
select results_eq(
    $$select step_slug, step_index from workflow.steps where flow_slug = 'f' order by step_index$$,
    $$values ('a', 0), ('m', 1), ('d', 2), ('z', 3)$$,
    'step_index records the order steps were added'
);
select is((select count(*) from pgmq.meta where queue_name in ('default', 'local', 'gpu_q')), 3::bigint,
    'the queues of the steps exist');
select is(
    (select column_default from information_schema.columns
     where table_schema = 'workflow' and table_name = 'steps' and column_name = 'execution'),
    '''local''::text',
    'the column default agrees with _normalize_step'
);

select * from finish();
rollback;
