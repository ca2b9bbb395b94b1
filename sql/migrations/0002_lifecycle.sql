-- 0002_lifecycle: pause, cancel, retry and run deadlines.
--
-- A run's status stays one of started / completed / failed (the Elixir library's three); pausing and
-- cancelling are recorded beside it: a paused run is 'started' with paused_at set, a cancelled
-- run is 'failed' with cancelled_at set and the reason as its error.
alter table workflow.runs add column paused_at timestamptz;
alter table workflow.runs add column cancelled_at timestamptz;
alter table workflow.runs add column retry_of uuid references workflow.runs (run_id) on delete set null;

-- Runs past their deadline are found by enforce_deadlines without scanning finished runs.
create index runs_deadline_idx on workflow.runs (deadline_at) where status = 'started' and deadline_at is not null;
-- Unfiltered listings ordered by start time, and the retries of a run.
create index runs_started_idx on workflow.runs (started_at desc);
create index runs_retry_of_idx on workflow.runs (retry_of) where retry_of is not null;
