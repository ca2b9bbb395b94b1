-- Every path that creates a queue (register_flow, add_step, set_queue_order, a channel's first
-- message) gives its pgmq tables the queue-like autovacuum settings; a repeated call is a no-op.
begin;
\ir ../_helpers.psql
select plan(6);

create function sw_test.queue_options(queue text) returns text[] language sql as $$
    select array_agg(c.relname || ':' || array_to_string(c.reloptions, ',') order by c.relname)
    from pg_class c
    where c.relnamespace = 'pgmq'::regnamespace and c.relname in ('q_' || queue, 'a_' || queue)
$$;

select workflow.register_flow('{"slug": "tq", "steps": [{"slug": "a", "queue": "tq_flow", "execution": "distributed"}]}') \g /dev/null
select is(sw_test.queue_options('tq_flow'), array[
    'a_tq_flow:autovacuum_vacuum_scale_factor=0.02,autovacuum_vacuum_insert_scale_factor=0.02,autovacuum_analyze_scale_factor=0.02,autovacuum_vacuum_cost_delay=0',
    'q_tq_flow:autovacuum_vacuum_scale_factor=0.02,autovacuum_vacuum_insert_scale_factor=0.02,autovacuum_analyze_scale_factor=0.02,autovacuum_vacuum_cost_delay=0'],
    'register_flow: the queue table and its archive vacuum after 2% changed, unthrottled');

select workflow.add_step('tq', 'b', execution => 'distributed', queue_name => 'tq_added') \g /dev/null
select is(cardinality(sw_test.queue_options('tq_added')), 2, 'add_step: a new queue gets them too');
select ok((select bool_and(o like '%autovacuum_vacuum_cost_delay=0') from unnest(sw_test.queue_options('tq_added')) o),
    'add_step: both tables unthrottled');

select workflow.set_queue_order('tq_ordered') \g /dev/null
select ok((select bool_and(o like '%autovacuum_vacuum_scale_factor=0.02%') from unnest(sw_test.queue_options('tq_ordered')) o)
    and cardinality(sw_test.queue_options('tq_ordered')) = 2, 'set_queue_order on a new queue: tuned');

select workflow.send_with_notify('tq_channel', '{"n": 1}') \g /dev/null
select ok((select bool_and(o like '%autovacuum_vacuum_scale_factor=0.02%') from unnest(sw_test.queue_options('wfch_tq_channel')) o)
    and cardinality(sw_test.queue_options('wfch_tq_channel')) = 2, 'a channel''s first message: its queue is tuned');

select workflow._tune_queue('tq_flow');
select workflow._tune_queue('no_such_queue');
select is(sw_test.queue_options('tq_flow'), array[
    'a_tq_flow:autovacuum_vacuum_scale_factor=0.02,autovacuum_vacuum_insert_scale_factor=0.02,autovacuum_analyze_scale_factor=0.02,autovacuum_vacuum_cost_delay=0',
    'q_tq_flow:autovacuum_vacuum_scale_factor=0.02,autovacuum_vacuum_insert_scale_factor=0.02,autovacuum_analyze_scale_factor=0.02,autovacuum_vacuum_cost_delay=0'],
    'repeated, and for a queue that does not exist: no error, nothing changes');

select * from finish();
rollback;
