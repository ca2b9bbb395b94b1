-- start_flow: create a run of a flow and enqueue the tasks of its root steps.
--
-- Called by psql users and clients (execute, the CLI); start_flows is the batch form and holds
-- the logic, so the two cannot drift. input must be a JSON object, or an array when the flow has a
-- root map step (that step maps over the input). A caller-supplied run_id makes the call
-- idempotent: repeating it returns the same run without starting anything new. timeout_seconds
-- sets the run's deadline (default: the flow's timeout; none if both are null), after which
-- enforce_deadlines cancels it. owner: the worker id of the process that executes the run's
-- local steps; if it dies the run fails (see start_flows). version: the flow version number to run
-- (null: the current one). Same run_id with another input: WF012.
-- concurrency_key: the run's key for its flow's key limits; priority: the run's priority on
-- ordered queues (both: see start_flows). trace_context: the caller's trace context, stored on the
-- run for tracing (see start_flows).
-- idempotency_key / dedupe_window, debounce_key / debounce_interval / debounce_mode and start_at
-- are start_flows' (a key of one run; see there for what each does).
-- Locks, invariants, errors: those of start_flows (WF002, WF020, WF021, WF016, WF009, WF012,
-- WF010, WF001, WF019, WF025, WF030).
create or replace function workflow.start_flow(
    flow_slug text,
    input jsonb default '{}',
    run_id uuid default null,
    timeout_seconds integer default null,
    now timestamptz default clock_timestamp(),
    owner text default null,
    concurrency_key text default null,
    priority integer default null,
    version integer default null,
    idempotency_key text default null,
    dedupe_window interval default interval '24 hours',
    debounce_key text default null,
    debounce_interval interval default null,
    debounce_mode text default 'debounce',
    start_at timestamptz default null,
    trace_context jsonb default null
)
returns uuid
language sql
set search_path = ''
as $$
    select s.run_id
    from workflow.start_flows(
        start_flow.flow_slug,
        array[start_flow.input],
        case when start_flow.run_id is null then null else array[start_flow.run_id] end,
        start_flow.timeout_seconds,
        start_flow.now,
        start_flow.owner,
        start_flow.concurrency_key,
        start_flow.priority,
        start_flow.version,
        case when start_flow.idempotency_key is null then null else array[start_flow.idempotency_key] end,
        start_flow.dedupe_window,
        start_flow.debounce_key,
        start_flow.debounce_interval,
        start_flow.debounce_mode,
        start_flow.start_at,
        start_flow.trace_context
    ) as s;
$$;
