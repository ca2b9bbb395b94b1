-- _tune_queue: give a queue's pgmq tables the autovacuum settings of a queue-like table.
--
-- Called by register_flow_version, add_step, set_queue_order and _channel_queue right after
-- they create a queue (pgmq.create), so that every queue the engine makes gets them; migration
-- 0014 applied them to the queues that existed before. pgmq creates pgmq.q_<queue> (an insert,
-- a visibility update and a delete per task: the busiest table of all) and pgmq.a_<queue> with
-- PostgreSQL's defaults: vacuum after 20% of the rows changed, throttled by the cost delay, so a
-- vacuum of a busy queue falls behind (measured: 44 MB for about 1,000 live rows). Here: vacuum
-- and analyze after 2% changed (or inserted), unthrottled, as the hot tables of the workflow
-- schema. A table the current role does not own (a queue created by someone else) is left as it
-- is: ALTER TABLE needs ownership, and the settings are an optimisation, not a rule.
-- Locks: SHARE UPDATE EXCLUSIVE on the two tables (ALTER TABLE ... SET), for a moment.
-- Errors: none. Safe to repeat (the settings are overwritten with the same values).
create or replace function workflow._tune_queue(queue_name text)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_table text;
begin
    for v_table in
        select c.relname
        from pg_class c
        where c.relnamespace = 'pgmq'::regnamespace and c.relkind = 'r'
          and c.relname in ('q_' || _tune_queue.queue_name, 'a_' || _tune_queue.queue_name)
          and pg_has_role(current_user, c.relowner, 'USAGE')
        order by c.relname
    loop
        execute format(
            'alter table pgmq.%I set (autovacuum_vacuum_scale_factor = 0.02,'
            ' autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,'
            ' autovacuum_vacuum_cost_delay = 0)', v_table);
    end loop;
end;
$$;
