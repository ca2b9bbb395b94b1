-- approve: approve a run's wait step: it completes with {"approved": true, "by", "comment", "at"}.
--
-- Human approval is a wait step (wait_for) answered by name: the step's output says what was
-- decided, and the steps after it read it (a condition, or a handler, branches on "approved").
-- A approve sent before the wait step has started is kept and taken when it starts.
-- Called by psql users, Client.approve, the CLI (approve) and the dashboard's buttons on a waiting
-- run. Checks, locks and errors (WF011, WF034, WF035): _answer_wait; delivery: _send_event.
-- Returns {"status": "delivered", "run_id", "step"} or {"status": "kept", ...}. Not repeatable:
-- a second call on a step that completed is WF035.
create or replace function workflow.approve(
    run_id uuid,
    step_slug text,
    decided_by text default null,
    comment text default null,
    now timestamptz default clock_timestamp()
)
returns jsonb
language sql
set search_path = ''
as $$
    select workflow._answer_wait(approve.run_id, approve.step_slug, true, approve.decided_by, approve.comment, approve.now)
$$;
