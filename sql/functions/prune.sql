-- prune: delete one batch of finished runs older than an interval, with everything kept for them.
--
-- Retention for the run tables. A run is finished when its status is 'completed' or 'failed'
-- (cancelled included); it is old when it ended (completed_at or failed_at) before
-- now - older_than. Deletes up to batch_size such runs, oldest first, and their events, tasks and
-- step_states, then one batch of start keys whose window ended before the cutoff (an
-- idempotency key is kept for its dedupe window, then until prune passes older_than beyond
-- it), then one batch of expired channel and queue archives (prune_archives), then the flow
-- versions retired before now - older_than that no run uses any more (prune_flow_versions,
-- which reports its count when called alone), and returns what it deleted. Called by psql
-- users, cron jobs and the soak benchmark in a loop: one call is one short transaction, and the
-- caller repeats it until runs_deleted and archived_deleted are 0 (for example
-- `select * from workflow.prune('7 days')` under psql's \watch). A single call never works
-- through the whole backlog, so it never holds locks, or the oldest snapshot that vacuum has to
-- respect, for longer than one batch.
-- How: the runs are picked through runs_started_idx (a run that ended before the cutoff started
-- before it; the walk passes over the live and recently ended runs that started before the
-- cutoff, a bounded set, and no index on the end time is needed, so a run's final update adds
-- one index entry fewer: migration 0014) and locked FOR UPDATE SKIP LOCKED (a run
-- that retry_failed_workflow or a forced cancel holds is left for the next call); each child
-- table is then cleared with one DELETE by run_id (index: events_run_idx, task_is_unique,
-- step_states' primary key) and the runs last by primary key, so the cascades find nothing
-- left to do. Live runs are never touched, except that a later run retrying a deleted one has
-- its retry_of set to null (the foreign key's ON DELETE SET NULL).
-- Locks: the batch's runs rows, then their events, tasks and step_states rows (nobody else
-- writes rows of a finished run; a late completion of one of its tasks matches no started task).
-- Errors: WF010 older_than null or negative, batch_size outside 1..100000. Safe to repeat and to
-- run concurrently (SKIP LOCKED splits the work).
create or replace function workflow.prune(
    older_than interval,
    batch_size integer default 1000,
    now timestamptz default clock_timestamp()
)
returns table (
    runs_deleted integer,
    step_states_deleted integer,
    tasks_deleted integer,
    events_deleted integer,
    archived_deleted integer
)
language plpgsql
set search_path = ''
as $$
declare
    v_runs uuid[];
    v_cutoff timestamptz;
begin
    -- GUARD: arguments
    if prune.older_than is null or prune.older_than < interval '0' then
        raise exception 'older_than must be a non-negative interval, got %', coalesce(prune.older_than::text, 'null')
            using errcode = 'WF010', hint = 'For example workflow.prune(interval ''7 days'').';
    end if;
    if prune.batch_size is null or prune.batch_size not between 1 and 100000 then
        raise exception 'batch_size must be between 1 and 100000, got %', coalesce(prune.batch_size::text, 'null')
            using errcode = 'WF010';
    end if;
    v_cutoff := prune.now - prune.older_than;

    -- PHASE 1: pick and lock one batch of old finished runs, oldest start first. A run cancelled
    -- before its scheduled start keeps its planned started_at, so it goes once that is older
    -- than the cutoff too.
    select array_agg(x.run_id) into v_runs from (
        select r.run_id from workflow.runs r
        where r.started_at < v_cutoff and r.status in ('completed', 'failed')
          and coalesce(r.completed_at, r.failed_at) < v_cutoff
        order by r.started_at
        limit prune.batch_size
        for update skip locked
    ) as x;

    runs_deleted := 0;
    step_states_deleted := 0;
    tasks_deleted := 0;
    events_deleted := 0;
    if v_runs is not null then
        -- PHASE 2: children first, one statement each, then the runs by primary key
        delete from workflow.events e where e.run_id = any(v_runs);
        get diagnostics events_deleted = row_count;
        delete from workflow.tasks t where t.run_id = any(v_runs);
        get diagnostics tasks_deleted = row_count;
        delete from workflow.step_states s where s.run_id = any(v_runs);
        get diagnostics step_states_deleted = row_count;
        delete from workflow.runs r where r.run_id = any(v_runs);
        get diagnostics runs_deleted = row_count;
    end if;

    -- PHASE 3: start keys (idempotency, debounce, throttle) whose window ended before the
    -- cutoff; a key goes with its run too (on delete cascade)
    delete from workflow.start_keys k
    where (k.flow_slug, k.key_kind, k.start_key) in (
        select k2.flow_slug, k2.key_kind, k2.start_key from workflow.start_keys k2
        where k2.window_ends_at < v_cutoff
        order by k2.window_ends_at
        limit prune.batch_size);

    -- PHASE 4: one batch of expired archives per queue
    archived_deleted := workflow.prune_archives(prune.older_than, prune.batch_size, prune.now);
    -- PHASE 4: retired versions no run uses (few rows; not counted in this row, whose columns
    -- are those of the release)
    perform workflow.prune_flow_versions(prune.older_than, prune.now);
    return next;
end;
$$;
