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
-- Only one caller at a time does the work (transaction advisory lock, try-only): the others
-- return at once. ANALYZE needs the tables' owner; for other roles it is skipped with a warning.
-- Returns {"cancelled_runs": n, "released_tasks": n, "failed_runs": n, "analyzed": [table, ...]}.
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
        return v_counts || jsonb_build_object('analyzed', '[]'::jsonb);
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
    return v_counts || jsonb_build_object('analyzed', to_jsonb(v_analyzed));
end;
$$;
