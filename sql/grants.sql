-- grants: the privileges of the engine's three roles, reapplied on every install.
--
-- Applied by the installer after the migrations and the functions, in its own transaction, so
-- tables and functions added by any later migration or function file get their grants without
-- a migration of their own, and a function dropped and re-created (a signature change) gets them
-- back. Supersedes the grant statements of migration 0005_roles_retention, which created the
-- roles and stays as released; the reasons for each privilege are in its header and in
-- docs/operations.md. A new table that workers or readers touch is added below by name (the
-- admin and reader lines cover every table already; the worker's grants are its exact
-- footprint, column by column).
--
-- Functions: EXECUTE is granted to the three roles explicitly, beside PostgreSQL's default
-- EXECUTE for PUBLIC, so a DBA who revokes it from PUBLIC (a common hardening) keeps the engine
-- usable by its roles. Every function is SECURITY INVOKER, so table privileges remain the
-- boundary, but for workflow._fire_due (SECURITY DEFINER, see its header): the sweep of a worker
-- role's claim has it start the runs and ticks that are due, so it is executable by
-- workflow_admin and workflow_worker only, never by public or workflow_reader.
--
-- When the roles do not exist (the installer had no CREATEROLE when 0005 ran) a NOTICE says so
-- and nothing is granted; the next install after a DBA creates them grants everything.
-- Safe to repeat: grants and default privileges are idempotent.
do $grants$
declare
    v_missing text[];
begin
    -- Before the roles check: a definer function is never executable by public, roles or not.
    revoke execute on function workflow._fire_due(timestamptz) from public;
    select array_agg(r.name order by r.name) into v_missing
    from unnest(array['workflow_admin', 'workflow_worker', 'workflow_reader']) as r (name)
    where not exists (select 1 from pg_catalog.pg_roles as p where p.rolname = r.name);
    if v_missing is not null then
        raise notice 'grants skipped: roles % do not exist', v_missing
            using hint = 'Create them (create role workflow_worker nologin; ...) and install again.';
        return;
    end if;

    grant usage on schema workflow to workflow_admin, workflow_worker, workflow_reader;
    grant usage on schema pgmq to workflow_admin, workflow_worker, workflow_reader;
    grant create on schema pgmq to workflow_admin;
    grant execute on all functions in schema workflow to workflow_admin, workflow_worker, workflow_reader;
    alter default privileges in schema workflow
        grant execute on functions to workflow_admin, workflow_worker, workflow_reader;
    -- A reader's sweep writes nothing, so it never needs _fire_due; by hand it must not start runs.
    revoke execute on function workflow._fire_due(timestamptz) from workflow_reader;

    -- workflow_admin: everything in both schemas.
    grant all on all tables in schema workflow to workflow_admin;
    grant all on all sequences in schema workflow to workflow_admin;
    grant all on all tables in schema pgmq to workflow_admin;
    grant all on all sequences in schema pgmq to workflow_admin;
    alter default privileges in schema workflow grant all on tables to workflow_admin;
    alter default privileges in schema workflow grant all on sequences to workflow_admin;
    alter default privileges in schema pgmq grant all on tables to workflow_admin;
    alter default privileges in schema pgmq grant all on sequences to workflow_admin;

    -- workflow_worker: the task path.
    grant select on workflow.flows, workflow.flow_versions, workflow.steps, workflow.deps to workflow_worker;
    grant select on workflow.runs to workflow_worker;
    grant update (remaining_steps, status, output, error_message, failed_step, completed_at, failed_at)
        on workflow.runs to workflow_worker;
    grant select on workflow.step_states to workflow_worker;
    grant update (status, remaining_deps, remaining_tasks, initial_tasks, output, started_at, completed_at,
        failed_at, error_message) on workflow.step_states to workflow_worker;
    grant select, insert on workflow.tasks to workflow_worker;
    grant update (status, attempts_count, message_id, output, error_message, worker_id, queued_at, started_at,
        completed_at, failed_at) on workflow.tasks to workflow_worker;
    grant select, insert on workflow.events to workflow_worker;
    -- Completing a step may start a wait step (it consumes a kept event or records its wait) or
    -- a sleeping step; a handler may send an event (send_event, approve, reject).
    grant select, insert, delete on workflow.event_waits, workflow.pending_events to workflow_worker;
    grant update (wake_at) on workflow.step_states to workflow_worker;
    -- A worker registers, heartbeats and deregisters itself; the engine's sweep, run from its
    -- claims, writes the workers and the one sweeps row.
    grant select, insert, update, delete on workflow.workers to workflow_worker;
    grant select, update on workflow.sweeps to workflow_worker;
    -- A limited claim counts, records and clears the slots and rate windows of the keys it holds.
    grant select on workflow.limits to workflow_worker;
    grant select, insert, delete on workflow.concurrency_slots to workflow_worker;
    grant select, insert, update on workflow.rate_windows to workflow_worker;
    -- Sending a task to an ordered queue tags it and moves its key's clock (_order_messages).
    grant select on workflow.queue_orders, workflow.step_priorities to workflow_worker;
    grant select, insert, update on workflow.fair_clocks to workflow_worker;
    grant select, insert, update, delete on all tables in schema pgmq to workflow_worker;
    grant usage, select on all sequences in schema pgmq to workflow_worker;
    alter default privileges in schema pgmq grant select, insert, update, delete on tables to workflow_worker;
    alter default privileges in schema pgmq grant usage, select on sequences to workflow_worker;

    -- workflow_reader: every table of the engine, read-only, and the queues' history.
    grant select on all tables in schema workflow to workflow_reader;
    grant select on all tables in schema pgmq to workflow_reader;
    alter default privileges in schema workflow grant select on tables to workflow_reader;
    alter default privileges in schema pgmq grant select on tables to workflow_reader;

    -- Queues created later by workflow_admin (a member adding a step with SET ROLE) get the same
    -- table privileges; needs membership in workflow_admin (see 0005).
    begin
        alter default privileges for role workflow_admin in schema pgmq
            grant select, insert, update, delete on tables to workflow_worker;
        alter default privileges for role workflow_admin in schema pgmq
            grant usage, select on sequences to workflow_worker;
        alter default privileges for role workflow_admin in schema pgmq
            grant select on tables to workflow_reader;
    exception when insufficient_privilege then
        raise notice 'default privileges for workflow_admin not set (% is not a member)', current_user;
    end;
end
$grants$;
