-- schedule_maintenance: run workflow.maintain() on a schedule with pg_cron, where it is installed.
--
-- Optional, never required: the engine's own calls (claim_tasks, start_flow, get_run_status)
-- already sweep dead workers, dead owners and deadlines at most once a second. A schedule adds
-- that housekeeping (and maintain's statistics refresh) when nothing calls the engine at all.
-- Called by a DBA or the installer's user, once; a repeat with the same job_name replaces the
-- schedule (pg_cron's cron.schedule_in_database keeps one job per name). every is turned into a
-- pg_cron schedule: 1-59 seconds ('N seconds', pg_cron 1.5+), whole minutes 1-59 ('*/N * * * *'),
-- whole hours 1-23 ('0 */N * * *') or one day ('0 0 * * *'). The job runs in this database.
-- Returns pg_cron's job id. Locks: what cron.schedule_in_database locks (its job table).
-- Errors: WF018 pg_cron is not installed in this database (the hint says how, and that it is
-- optional); WF010 an interval none of the forms above can express. Safe to repeat.
create or replace function workflow.schedule_maintenance(
    every interval default '1 minute',
    job_name text default 'workflow_maintain'
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
    v_secs numeric := extract(epoch from schedule_maintenance.every);
    v_schedule text;
    v_job bigint;
begin
    -- GUARD: pg_cron present (its function, not only its catalogue row, so any install counts)
    if not exists (
        select 1 from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'cron' and p.proname = 'schedule_in_database'
    ) then
        raise exception 'pg_cron is not installed in database %', current_database()
            using errcode = 'WF018',
            hint = 'pg_cron is optional: the engine sweeps itself in its own calls. To add it: install '
                'the package (Debian: postgresql-15-cron), add pg_cron to shared_preload_libraries, '
                'set cron.database_name, restart, then create extension pg_cron.';
    end if;
    v_schedule := case
        when v_secs >= 1 and v_secs < 60 and v_secs = trunc(v_secs) then format('%s seconds', v_secs::bigint)
        when v_secs >= 60 and v_secs < 3600 and v_secs % 60 = 0 then format('*/%s * * * *', (v_secs / 60)::bigint)
        when v_secs >= 3600 and v_secs < 86400 and v_secs % 3600 = 0 then format('0 */%s * * *', (v_secs / 3600)::bigint)
        when v_secs = 86400 then '0 0 * * *'
    end;
    if v_schedule is null then
        raise exception 'cannot schedule maintenance every %', schedule_maintenance.every
            using errcode = 'WF010',
            hint = 'Use 1-59 seconds, whole minutes below an hour, whole hours below a day, or 1 day.';
    end if;
    -- Dynamic, and composed: the cron schema exists only where pg_cron does, so the statement
    -- cannot be checked (by plpgsql_check) or planned before this guard has passed.
    execute format('select %I.schedule_in_database($1, $2, $3, $4)', 'cron')
    into v_job
    using coalesce(schedule_maintenance.job_name, 'workflow_maintain'), v_schedule,
        'select workflow.maintain()', current_database();
    return v_job;
end;
$$;
