-- 0014_storage_pressure: fewer index entries per finished run, and queue-like autovacuum
-- settings on the pgmq tables of the engine's queues.
--
-- runs_finished_idx goes: it served prune only, and every run's final update (status and end
-- time) added an entry to it. prune now walks runs_started_idx (a run that ended before the
-- cutoff started before it), which the final update does not change. The run's final update
-- is still not heap-only: the partial indexes of the live runs (deadlines, owners, scheduled
-- starts) and the listing index (status, started_at) name the status, and HOT needs every
-- indexed column unchanged (docs/operations.md, "Vacuum and the hot tables").
--
-- The queue tables (pgmq.q_<queue>: an insert, a visibility update and a delete per task) and
-- their archives get the hot tables' autovacuum settings; pgmq creates them with PostgreSQL's
-- defaults (vacuum after 20% of the rows changed, throttled by the cost delay), under which a
-- busy queue table was measured at 44 MB for about 1,000 live rows. New queues get the same
-- settings from workflow._tune_queue, called wherever the engine creates a queue.

drop index workflow.runs_finished_idx;

do $tune$
declare
    v_table text;
begin
    for v_table in
        select c.relname
        from pgmq.meta m
        join pg_class c on c.relnamespace = 'pgmq'::regnamespace
            and c.relname in ('q_' || m.queue_name, 'a_' || m.queue_name)
            and c.relkind = 'r'
        where pg_has_role(current_user, c.relowner, 'USAGE')
        order by c.relname
    loop
        execute format(
            'alter table pgmq.%I set (autovacuum_vacuum_scale_factor = 0.02,'
            ' autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,'
            ' autovacuum_vacuum_cost_delay = 0)', v_table);
    end loop;
end;
$tune$;

-- tasks and step_states: more room on each page for heap-only updates. A task is updated twice
-- (claimed, then completed with its output) and a step state once or more; while a snapshot
-- holds back pruning, every update needs free space on its page to stay heap-only. Measured
-- (bench/pressure.py --quick, an xid held for 15 s): with fillfactor 80, 39-48% of the updates
-- of tasks and 40-51% of step_states were heap-only; with 50, 69% and 66%. New pages only: the
-- existing ones fill as before until they are rewritten.
alter table workflow.tasks set (fillfactor = 50);
alter table workflow.step_states set (fillfactor = 50);
