-- 0005_roles_retention: least-privilege roles, and what retention (workflow.prune) needs.
--
-- Roles. Three NOLOGIN group roles; applications log in as their own roles and are granted one
-- of these (`grant workflow_worker to app_worker`):
--   workflow_admin   defines and deletes flows, starts, cancels, pauses, resumes and retries runs,
--                    prunes; every privilege on the engine's tables and functions, and CREATE on
--                    schema pgmq (adding a step creates its queue).
--   workflow_worker  claims, completes and fails tasks, extends leases, reads its tasks' inputs
--                    (through claim_tasks) and flow shapes (get_flow). Nothing else.
--   workflow_reader  run status and listings, flows, events, channel history. Read-only.
-- Why the migration creates them: a role is cluster-wide and creating one needs CREATEROLE (or
-- superuser). The installer usually has it (it creates schemas, and on managed services the
-- master user has CREATEROLE), and roles that exist are what makes the grants below possible in
-- the same transaction. If it lacks the right the roles are not created and a NOTICE says how
-- to create them; the grants are then skipped (a migration runs once, so a later re-install does
-- not redo them: a DBA creates the roles and runs the grant statements below by hand). Existing
-- roles of these names are reused, never altered (a DBA may have made them first).
--
-- Why table privileges at all: every engine function is SECURITY INVOKER (no SECURITY DEFINER:
-- a definer function's injectable clock and arguments would let a caller act with the owner's
-- rights), so a role calling claim_tasks needs the privileges of every statement it runs, down
-- to the helpers. The worker's grants are the exact footprint of the task path, column by column
-- where it matters:
--   runs         SELECT; UPDATE only of the columns completion and failure write (remaining_steps,
--                status, output, error_message, failed_step, completed_at, failed_at). Not
--                paused_at/cancelled_at: cancel_workflow_run and pause_workflow_run then fail
--                with insufficient_privilege even when called as SQL. No INSERT (cannot start
--                runs), no DELETE.
--   step_states  SELECT, UPDATE of the counters, status, output and timestamps (completion starts
--                dependents). No INSERT, no DELETE.
--   tasks        SELECT, INSERT (a ready step's tasks are created by the completion that made it
--                ready), UPDATE of status, attempt, lease and result columns. No DELETE.
--   events       INSERT (the state machine records its transitions), SELECT (the insert joins
--                runs; reading events is harmless). No UPDATE, no DELETE.
--   flows, steps, deps   SELECT only: a worker cannot define, change or delete a flow.
--   pgmq         USAGE on the schema, SELECT on pgmq.meta, and SELECT/INSERT/UPDATE/DELETE on the
--                queue tables (claim = update of vt, completion = delete, a ready step = insert).
-- What a worker role can still do by hand, because its own path needs it: mark a run failed (a
-- task out of attempts fails its run) and delete queue messages. It is a role for trusted worker
-- processes, separated from definitions, lifecycle commands and other schemas, not a sandbox.
--
-- Functions keep PostgreSQL's default EXECUTE for PUBLIC, on purpose: with invoker rights a
-- function can do nothing its caller's table privileges do not allow, so the table grants above
-- are the boundary (a worker calling cancel_workflow_run gets insufficient_privilege on
-- runs.cancelled_at). Function grants could not be kept exact anyway: the functions are
-- (re)loaded after the migrations on every install, so on a fresh install they do not exist
-- yet when this runs. The roles test calls each lifecycle and definition function as each role.
-- Queue tables created later by the installer or by workflow_admin get the worker's and reader's
-- table privileges through default privileges (pgmq.create runs as whoever adds the step).
--
-- Retention: runs_finished_idx finds finished runs by end time for workflow.prune, without
-- scanning live runs; the events table, pruned with its runs, gets the insert-driven vacuum
-- settings of an append-only table (so its visibility map stays current for index-only reads);
-- the hot tables get unthrottled autovacuum.

create index runs_finished_idx on workflow.runs ((coalesce(completed_at, failed_at)))
where status <> 'started';

alter table workflow.events set (autovacuum_vacuum_insert_scale_factor = 0.05);

-- Unthrottled vacuum on the hot tables: they churn (every task is inserted, updated twice and,
-- with retention, deleted), and the default cost delay lets a vacuum of a fast queue fall
-- behind its writers for good (bench/soak.py: tables ten times their live size).
alter table workflow.runs set (autovacuum_vacuum_cost_delay = 0);
alter table workflow.step_states set (autovacuum_vacuum_cost_delay = 0);
alter table workflow.tasks set (autovacuum_vacuum_cost_delay = 0);
alter table workflow.events set (autovacuum_vacuum_cost_delay = 0);

do $roles$
declare
    v_role text;
    v_can_create boolean;
    v_missing text[] := '{}';
begin
    select r.rolsuper or r.rolcreaterole into v_can_create
    from pg_catalog.pg_roles r where r.rolname = current_user;

    foreach v_role in array array['workflow_admin', 'workflow_worker', 'workflow_reader'] loop
        if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = v_role) then
            if v_can_create then
                begin
                    execute format('create role %I nologin', v_role);
                exception when duplicate_object or unique_violation then
                    -- Another database of this cluster is being installed at the same moment.
                    null;
                end;
            else
                v_missing := v_missing || v_role;
            end if;
        end if;
    end loop;

    if cardinality(v_missing) > 0 then
        raise notice 'roles % not created: % has no CREATEROLE; grants skipped', v_missing, current_user
            using hint = 'Create them (create role workflow_worker nologin; ...) and run the grant '
                'statements of migration 0005_roles_retention by hand.';
        return;
    end if;

    -- workflow_admin: everything in both schemas.
    grant usage on schema workflow to workflow_admin, workflow_worker, workflow_reader;
    grant usage, create on schema pgmq to workflow_admin;
    grant usage on schema pgmq to workflow_worker, workflow_reader;
    grant all on all tables in schema workflow to workflow_admin;
    grant all on all sequences in schema workflow to workflow_admin;
    grant all on all tables in schema pgmq to workflow_admin;
    grant all on all sequences in schema pgmq to workflow_admin;
    alter default privileges in schema workflow grant all on tables to workflow_admin;
    alter default privileges in schema workflow grant all on sequences to workflow_admin;
    alter default privileges in schema pgmq grant all on tables to workflow_admin;
    alter default privileges in schema pgmq grant all on sequences to workflow_admin;

    -- workflow_worker: the task path (see the header for why each one).
    grant select on workflow.flows, workflow.steps, workflow.deps to workflow_worker;
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
    grant select on pgmq.meta to workflow_worker, workflow_reader;
    grant select, insert, update, delete on all tables in schema pgmq to workflow_worker;
    grant usage, select on all sequences in schema pgmq to workflow_worker;
    alter default privileges in schema pgmq grant select, insert, update, delete on tables to workflow_worker;
    alter default privileges in schema pgmq grant usage, select on sequences to workflow_worker;
    alter default privileges in schema pgmq grant select on tables to workflow_reader;

    -- workflow_reader: status, lists, definitions, events and channel history.
    grant select on workflow.flows, workflow.steps, workflow.deps, workflow.runs, workflow.step_states,
        workflow.tasks, workflow.events, workflow.channels to workflow_reader;
    grant select on all tables in schema pgmq to workflow_reader;

    -- Queues created later by workflow_admin (a member adding a step with SET ROLE) get the same
    -- table privileges. Needs membership in workflow_admin, which the creator of the role has on
    -- PostgreSQL 16+ and a superuser always has; otherwise the installer's own defaults above
    -- still cover queues it creates.
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
$roles$;
