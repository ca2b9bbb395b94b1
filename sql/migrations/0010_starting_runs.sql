-- 0010_starting_runs: runs start by schedule, once per idempotency key, coalesced by a debounce
-- or throttle key, or at a time.
--
-- schedules: one row per named schedule. cron is the 5-field expression (or an @shorthand) as
-- given; workflow._parse_cron validates it at create/update time and workflow._cron_next
-- evaluates it in the schedule's time zone. next_fire_at is the next tick not yet fired: the one
-- column fire_due_schedules reads (schedules_due_idx) and advances under the row's lock, so a
-- tick fires once however many callers race (they take the rows FOR UPDATE SKIP LOCKED). missed
-- says what happens to ticks that came due while nobody called the engine: 'skip' (a tick
-- fires only within a minute of its time), 'once' (one run for the latest due tick) or 'each'
-- (every due tick, the latest max_catch_up of them).
--
-- runs.schedule_name / scheduled_for: the schedule and the tick a run was started for (null
-- for runs started otherwise; scheduled_for null for "trigger now"). The unique index is the
-- last line of defence of "one run per tick": a second run for the same tick cannot commit.
--
-- runs.status 'scheduled': a run whose start is in the future (start_at, or a debounced start
-- waiting for the quiet interval). Its step states exist, its root steps are not started; the
-- sweep (workflow._start_due_runs) starts it when start_at has come. It can be cancelled before.
--
-- start_keys: the keys that make starts coalesce, per flow: kind 'idempotency' (a repeat within
-- the window returns the first run), 'throttle' (the first start runs, the rest within the
-- interval return it) and 'debounce' (the run waits until the interval has been quiet; the last
-- input wins). window_ends_at: until when the key holds. Rows go with their run (on delete
-- cascade, so prune of a run removes its keys) and prune removes keys whose window ended.

create table workflow.schedules (
    schedule_name text primary key,
    flow_slug text not null references workflow.flows (flow_slug),
    cron text not null,
    timezone text not null default 'UTC',
    input jsonb not null default '{}',
    enabled boolean not null default true,
    missed text not null default 'skip',
    max_catch_up integer not null default 10,
    next_fire_at timestamptz,
    last_fired_at timestamptz,
    last_run_id uuid,
    -- Why the last tick could not start its run (null when it could); the tick is not retried.
    last_error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint schedule_name_is_valid check (schedule_name ~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$'),
    constraint missed_is_known check (missed in ('skip', 'once', 'each')),
    constraint max_catch_up_is_positive check (max_catch_up >= 1)
);
create index schedules_due_idx on workflow.schedules (next_fire_at) where enabled;

alter table workflow.runs drop constraint run_status_is_known;
alter table workflow.runs add constraint run_status_is_known
check (status in ('scheduled', 'started', 'completed', 'failed'));
alter table workflow.runs add column start_at timestamptz;
alter table workflow.runs add column schedule_name text;
alter table workflow.runs add column scheduled_for timestamptz;
create unique index runs_schedule_tick_is_unique on workflow.runs (schedule_name, scheduled_for)
where schedule_name is not null and scheduled_for is not null;
-- The sweep finds the scheduled runs that are due without scanning the others.
create index runs_start_at_idx on workflow.runs (start_at) where status = 'scheduled';

create table workflow.start_keys (
    flow_slug text not null references workflow.flows (flow_slug),
    key_kind text not null,
    start_key text not null,
    -- Deferred: start_flows writes the key (taking its lock, which is what serialises racing
    -- starts of one key) before it inserts the run the key points at.
    run_id uuid not null references workflow.runs (run_id) on delete cascade deferrable initially deferred,
    window_ends_at timestamptz not null,
    created_at timestamptz not null default now(),
    primary key (flow_slug, key_kind, start_key),
    constraint key_kind_is_known check (key_kind in ('idempotency', 'debounce', 'throttle'))
);
create index start_keys_run_idx on workflow.start_keys (run_id);
create index start_keys_window_idx on workflow.start_keys (window_ends_at);

drop function if exists workflow.start_flow(text, jsonb, uuid, integer, timestamptz, text);
drop function if exists workflow.start_flows(text, jsonb[], uuid[], integer, timestamptz, text);
