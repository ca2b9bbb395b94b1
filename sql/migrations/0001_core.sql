-- 0001_core: definitions (flows, steps, deps) and run state (runs, step_states, tasks).
--
-- Tables are internal: the supported interface is the functions in sql/functions/ and the
-- documented columns read by status queries. Every state change goes through a function so
-- the readiness counters can never drift from the rows they count.

-- ---------------------------------------------------------------------------
-- Definitions
-- ---------------------------------------------------------------------------
create table workflow.flows (
    flow_slug text primary key,
    -- Run-level deadline applied when a run does not give its own (null: none).
    timeout_seconds integer,
    created_at timestamptz not null default now(),
    constraint flow_slug_is_valid check (flow_slug ~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$'),
    constraint timeout_is_positive check (timeout_seconds is null or timeout_seconds > 0)
);

create table workflow.steps (
    flow_slug text not null references workflow.flows (flow_slug) on delete cascade,
    step_slug text not null,
    -- Position in the order steps were added; a topological order by construction.
    step_index integer not null,
    step_type text not null default 'single',
    -- For a map step: the dependency whose output (an array) it maps over;
    -- null on a root map step, which maps over the run input.
    map_over text,
    execution text not null default 'distributed',
    queue_name text not null default 'default',
    max_attempts integer not null default 3,
    base_delay_seconds integer not null default 1,
    timeout_seconds integer not null default 60,
    start_delay_seconds integer not null default 0,
    -- Resource names a worker must advertise to claim this step's tasks (e.g. {gpu}).
    required_resources text[] not null default '{}',
    deps_count integer not null default 0,
    created_at timestamptz not null default now(),
    primary key (flow_slug, step_slug),
    constraint step_index_is_unique unique (flow_slug, step_index),
    constraint step_slug_is_valid check (step_slug ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$' and step_slug <> 'run'),
    constraint queue_name_is_valid check (queue_name ~ '^[a-z_][a-z0-9_]{0,46}$'),
    constraint step_type_is_known check (step_type in ('single', 'map')),
    constraint execution_is_known check (execution in ('local', 'distributed')),
    constraint max_attempts_is_positive check (max_attempts >= 1),
    constraint base_delay_is_not_negative check (base_delay_seconds >= 0),
    constraint timeout_is_positive check (timeout_seconds >= 1),
    constraint start_delay_is_not_negative check (start_delay_seconds >= 0),
    constraint map_over_only_on_map check (map_over is null or step_type = 'map')
);

create table workflow.deps (
    flow_slug text not null,
    step_slug text not null,
    dep_slug text not null,
    primary key (flow_slug, step_slug, dep_slug),
    foreign key (flow_slug, step_slug) references workflow.steps (flow_slug, step_slug) on delete cascade,
    foreign key (flow_slug, dep_slug) references workflow.steps (flow_slug, step_slug) on delete cascade,
    constraint dep_is_not_self check (dep_slug <> step_slug)
);

-- Walk from a step to its dependents (the completion path's direction).
create index deps_dep_idx on workflow.deps (flow_slug, dep_slug);

-- ---------------------------------------------------------------------------
-- Run state
-- ---------------------------------------------------------------------------
create table workflow.runs (
    run_id uuid primary key,
    flow_slug text not null references workflow.flows (flow_slug),
    status text not null default 'started',
    -- Steps not yet completed; the run completes in the transaction that takes it to 0.
    remaining_steps integer not null,
    -- Input and output are written once; large values are TOASTed out of line, so the
    -- counter updates on this row do not rewrite them.
    input jsonb not null,
    output jsonb,
    error_message text,
    failed_step text,
    started_at timestamptz not null default now(),
    completed_at timestamptz,
    failed_at timestamptz,
    deadline_at timestamptz,
    constraint run_status_is_known check (status in ('started', 'completed', 'failed')),
    constraint remaining_steps_is_not_negative check (remaining_steps >= 0)
);

create index runs_flow_started_idx on workflow.runs (flow_slug, started_at desc);
create index runs_status_started_idx on workflow.runs (status, started_at desc);

create table workflow.step_states (
    run_id uuid not null references workflow.runs (run_id) on delete cascade,
    step_slug text not null,
    flow_slug text not null,
    -- created: waiting on dependencies; started: tasks enqueued; completed; failed.
    status text not null default 'created',
    -- Dependencies not yet completed; the step starts in the transaction that takes it to 0.
    remaining_deps integer not null,
    -- Tasks not yet completed (set when the step starts); the step completes at 0.
    remaining_tasks integer,
    initial_tasks integer,
    -- The step's result as dependents see it: the task output for a single step, the array of
    -- task outputs in index order for a map step. Written once, when the step completes.
    output jsonb,
    started_at timestamptz,
    completed_at timestamptz,
    failed_at timestamptz,
    error_message text,
    primary key (run_id, step_slug),
    constraint step_status_is_known check (status in ('created', 'started', 'completed', 'failed')),
    constraint remaining_deps_is_not_negative check (remaining_deps >= 0),
    constraint remaining_tasks_is_not_negative check (remaining_tasks is null or remaining_tasks >= 0)
);

create table workflow.tasks (
    task_id bigint generated always as identity primary key,
    run_id uuid not null references workflow.runs (run_id) on delete cascade,
    step_slug text not null,
    task_index integer not null,
    queue_name text not null,
    -- queued: waiting in its queue (or in backoff); started: claimed, lease running;
    -- completed / failed: final.
    status text not null default 'queued',
    -- Number of claims so far; the claim token. A completion must quote the attempt it was
    -- given, so a worker whose lease expired and whose task was re-claimed is fenced off.
    attempts_count integer not null default 0,
    max_attempts integer not null,
    message_id bigint,
    -- The element of the mapped array for a map task; null for a single step's task.
    item jsonb,
    output jsonb,
    error_message text,
    worker_id text,
    queued_at timestamptz not null default now(),
    started_at timestamptz,
    completed_at timestamptz,
    failed_at timestamptz,
    constraint task_is_unique unique (run_id, step_slug, task_index),
    constraint task_status_is_known check (status in ('queued', 'started', 'completed', 'failed')),
    constraint attempts_within_max check (attempts_count <= max_attempts)
);

-- No separate index on tasks (run_id): task_is_unique leads with run_id and serves the
-- sweeps and status queries, and keeping status out of every index lets status updates be
-- HOT (heap-only) updates.

-- The hot tables are queue-like: rows are updated a few times each and then left alone.
-- Vacuum them early so dead versions from counter updates do not pile up, and leave room on
-- each page for HOT updates (no index changes on status/counter updates). Analyze them early
-- too: the state-machine functions use generic plans, which are made from the statistics of
-- the moment and remade after each ANALYZE; plans made on a never-analyzed table were seen to
-- drive joins from the wrong side (10-25 ms instead of under 1 ms for a 50-task batch).
alter table workflow.runs set (
    fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02
);
alter table workflow.step_states set (
    fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02
);
alter table workflow.tasks set (
    fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02
);
