-- 0011_control_flow: steps that wait for an event, sleep, or are skipped by a condition.
--
-- steps.control: a step's control-flow options in their normalised form (_normalize_step), null
-- for a step that has none, so flows without them keep their shape hash: "event", "event_key",
-- "wait_timeout" on a wait step (step_type 'wait'), "sleep" and "condition" on any step.
-- A wait step has no task: its step state is started and one event_waits row says what it waits
-- for. send_event (or a wait step starting after the event came) completes it with the payload.
--
-- event_waits: one row per started wait step; gone when the step ends (completed, timed out,
-- run failed or cancelled). timeout_at is read by the sweep (_expire_waits, event_waits_due_idx).
-- pending_events: an event sent while nobody waited for its (name, key): kept until expires_at
-- (send_event's keep, one day by default) for a wait step that starts later, which consumes it.
-- Both sides of the hand-over take one transaction-scoped advisory lock per (name, key), so an
-- event and a wait that start at the same moment find each other exactly once.
--
-- step_states.status 'skipped': a step whose condition was false (or one of whose dependencies
-- was skipped); it counts as done for its run. step_states.wake_at: when a sleeping step's tasks
-- become visible, so resume_workflow_run can keep a sleep that a pause interrupted.

alter table workflow.steps add column control jsonb;
alter table workflow.steps drop constraint step_type_is_known;
alter table workflow.steps add constraint step_type_is_known check (step_type in ('single', 'map', 'wait'));

alter table workflow.step_states drop constraint step_status_is_known;
alter table workflow.step_states add constraint step_status_is_known
check (status in ('created', 'started', 'completed', 'failed', 'skipped'));
alter table workflow.step_states add column wake_at timestamptz;

create table workflow.event_waits (
    run_id uuid not null references workflow.runs (run_id) on delete cascade,
    step_slug text not null,
    event_name text not null,
    event_key text not null,
    timeout_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (run_id, step_slug)
);
create index event_waits_key_idx on workflow.event_waits (event_name, event_key, created_at);
create index event_waits_due_idx on workflow.event_waits (timeout_at) where timeout_at is not null;

create table workflow.pending_events (
    event_id bigint generated always as identity primary key,
    event_name text not null,
    event_key text not null,
    payload jsonb,
    sent_at timestamptz not null default now(),
    expires_at timestamptz not null,
    constraint expires_after_sent check (expires_at > sent_at)
);
create index pending_events_key_idx on workflow.pending_events (event_name, event_key, event_id);
create index pending_events_expires_idx on workflow.pending_events (expires_at);

-- runs.resumed_from / resume_reason: a run made by resume_from_step records the step it was
-- resumed from and why (retry_of links it to the run it resumes).
alter table workflow.runs add column resumed_from text;
alter table workflow.runs add column resume_reason text;
