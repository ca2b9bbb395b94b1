-- 0003_messaging: workflow events and application channels.
--
-- events: the engine's own record of run and step state changes (run_started, step_completed,
-- step_failed, run_completed, run_failed, run_cancelled, run_paused, run_resumed), written in the
-- transaction that makes the change. Listeners are woken by NOTIFY and read the rows after the last
-- event_id they saw, so a listener that was away catches up from the table and order is kept.
create table workflow.events (
    event_id bigint generated always as identity primary key,
    created_at timestamptz not null default now(),
    run_id uuid not null,
    flow_slug text not null,
    step_slug text,
    event text not null,
    constraint event_is_known check (event in (
        'run_started', 'step_completed', 'step_failed', 'run_completed', 'run_failed',
        'run_cancelled', 'run_paused', 'run_resumed'
    ))
);

-- One run's events in order (the per-run feed, and pruning with the run).
create index events_run_idx on workflow.events (run_id, event_id);

-- Append-only and pruned by age: no updates, so no fillfactor slack; vacuum after deletes.
alter table workflow.events set (autovacuum_vacuum_scale_factor = 0.05);

-- channels: application channels used with send_with_notify. Each is backed by a pgmq queue
-- named wfch_<channel>, created on first use; this table records them so they can be listed.
create table workflow.channels (
    channel text primary key,
    queue_name text not null unique,
    created_at timestamptz not null default now(),
    constraint channel_is_valid check (channel ~ '^[a-z_][a-z0-9_]{0,41}$')
);
