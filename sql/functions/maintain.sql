-- maintain: the engine's periodic housekeeping, run by every worker on its polling cycle.
--
-- 1. Runs the engine's sweep unthrottled (_sweep with force): dead workers' leases are
--    released, runs whose owner is gone fail, runs past their deadline are cancelled
--    (enforce_deadlines). The engine's own calls run the same sweep at most once a second, so
--    maintain is no longer needed for any of these; it stays for callers that want them now.
-- 2. Refreshes the statistics of the hot tables (runs, step_states, tasks, events) when they are
--    stale. The state-machine functions use generic plans, made from the statistics of the
--    moment and remade after each ANALYZE. Where autovacuum is off, or lags behind a burst, plans
--    made on a never-analyzed or much smaller table join from the wrong side and a 50-task batch
--    costs 10-25 ms instead of under 1 ms (measured). A table is analyzed when it was never
--    analyzed and holds at least 100 rows, or when the rows changed since its last analysis
--    exceed 20% of its size (min 500); with autovacuum on and keeping up, this rarely fires.
-- 3. Names the hot tables a VACUUM would help now ("vacuum": the four above and the engine's
--    pgmq queue tables), for the caller to run (VACUUM cannot run inside a function): a table
--    with at least max(1000, 10% of its live rows) dead rows, not vacuumed in the last 10 s, on
--    which autovacuum is off (the server's setting, or the table's autovacuum_enabled), and that
--    the calling role owns (VACUUM needs ownership: a worker running as workflow_worker gets an
--    empty list). Where autovacuum is on, it is left to do its work with the per-table settings.
--    Never while a snapshot or transaction id of this database is older than 30 s (an
--    idle-in-transaction session that took an xid, a long reader, a prepared transaction): the
--    dead rows made since it began cannot be removed, so a vacuum would read the whole table and
--    free almost nothing. That age is returned as "oldest_snapshot_seconds", so callers can see
--    why nothing is advised. Workers run the list (VACUUM (SKIP_LOCKED): two workers never queue
--    behind each other).
-- Only one caller at a time does the work (transaction advisory lock, try-only): the others
-- return at once. ANALYZE needs the tables' owner; for other roles it is skipped with a warning.
-- Returns {"cancelled_runs": n, "released_tasks": n, "failed_runs": n, "analyzed": [table, ...],
-- "vacuum": [qualified table, ...], "oldest_snapshot_seconds": n}.
-- Safe to call often (cheap when there is nothing to do: one catalog query) and from many sessions.
create or replace function workflow.maintain(now timestamptz default clock_timestamp())
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_cancelled integer;
    v_table text;
    v_analyzed text[] := '{}'::text[];
    v_sweep jsonb;
    v_counts jsonb;
    v_oldest double precision;
    v_vacuum text[];
begin
    v_sweep := workflow._sweep(maintain.now, true);
    if v_sweep is null then
        -- Another session is sweeping: deadlines are still ours to enforce (SKIP LOCKED).
        v_cancelled := workflow.enforce_deadlines(maintain.now);
        v_sweep := '{}'::jsonb;
    else
        v_cancelled := (v_sweep ->> 'cancelled_runs')::integer;
    end if;
    v_counts := jsonb_build_object('cancelled_runs', v_cancelled,
        'released_tasks', coalesce((v_sweep ->> 'released_tasks')::integer, 0),
        'failed_runs', coalesce((v_sweep ->> 'failed_runs')::integer, 0));
    -- "SWMAINT" in ASCII: one maintainer at a time; the others skip the statistics part.
    if not pg_try_advisory_xact_lock(x'53574d41494e54'::bigint) then
        return v_counts || jsonb_build_object('analyzed', '[]'::jsonb, 'vacuum', '[]'::jsonb);
    end if;
    for v_table in
        select s.relname
        from pg_catalog.pg_stat_user_tables s
        join pg_catalog.pg_class c on c.oid = s.relid
        where s.schemaname = 'workflow' and s.relname in ('runs', 'step_states', 'tasks', 'events')
          and (
              (c.reltuples < 0 and s.n_live_tup >= 100)
              or s.n_mod_since_analyze > greatest(c.reltuples * 0.2, 500)
          )
        order by s.relname
    loop
        execute format('analyze workflow.%I', v_table);
        v_analyzed := v_analyzed || v_table;
    end loop;
    -- PHASE 3: tables a VACUUM would help, unless an old snapshot makes it useless
    select greatest(
        (select max(extract(epoch from (maintain.now - a.xact_start)))
         from pg_catalog.pg_stat_activity a
         where a.datname = current_database() and a.pid <> pg_backend_pid()
           and (a.backend_xmin is not null or a.backend_xid is not null) and a.xact_start is not null),
        (select max(extract(epoch from (maintain.now - p.prepared)))
         from pg_catalog.pg_prepared_xacts p where p.database = current_database()),
        0) into v_oldest;
    if v_oldest <= 30 then
        select array_agg(format('%I.%I', s.schemaname, s.relname) order by s.schemaname, s.relname)
        into v_vacuum
        from pg_catalog.pg_stat_user_tables s
        join pg_catalog.pg_class c on c.oid = s.relid
        where ((s.schemaname = 'workflow' and s.relname in ('runs', 'step_states', 'tasks', 'events'))
               or (s.schemaname = 'pgmq' and exists (
                   select 1 from pgmq.meta m where s.relname in ('q_' || m.queue_name, 'a_' || m.queue_name))))
          and s.n_dead_tup >= greatest(1000, s.n_live_tup * 0.1)
          and coalesce(greatest(s.last_vacuum, s.last_autovacuum), '-infinity') < maintain.now - interval '10 seconds'
          and (current_setting('autovacuum') = 'off'
               or coalesce(c.reloptions, '{}'::text[]) && array['autovacuum_enabled=false', 'autovacuum_enabled=off'])
          and pg_has_role(current_user, c.relowner, 'USAGE');
    end if;
    return v_counts || jsonb_build_object('analyzed', to_jsonb(v_analyzed),
        'vacuum', to_jsonb(coalesce(v_vacuum, '{}'::text[])),
        'oldest_snapshot_seconds', round(v_oldest::numeric, 1));
end;
$$;
