-- 0012_observability: what workflow.metrics and tracing read.
--
-- runs.trace_context: the W3C trace context (a JSON object of carrier headers, e.g.
-- {"traceparent": "00-<trace id>-<span id>-01"}) of the span that started the run, given as
-- start_flow(..., trace_context =>). Workers make each task's span a child of it, so one run
-- shows as one trace across processes. Null when the caller traced nothing. Written once, at
-- insert; nothing in the engine interprets it.
--
-- tasks_queued_at_brin: workflow.metrics reads the tasks of a time window (completions,
-- failures, claim latencies). A BRIN index on queued_at (the task's creation time, never
-- updated) bounds that read to the pages of recent tasks. queued_at is written only on insert,
-- so the index does not stop the status updates from being HOT, and a BRIN index costs an insert
-- almost nothing (a btree on completed_at would make every completion a non-HOT update).
--
-- The start signatures that gain a parameter are dropped so that the reload creates them afresh
-- instead of adding an overload that would make every existing call ambiguous.

alter table workflow.runs add column trace_context jsonb;

create index tasks_queued_at_brin on workflow.tasks using brin (queued_at);

drop function if exists workflow.start_flow(
    text, jsonb, uuid, integer, timestamptz, text, text, integer, integer, text, interval, text, interval, text,
    timestamptz
);
drop function if exists workflow.start_flows(
    text, jsonb[], uuid[], integer, timestamptz, text, text, integer, integer, text[], interval, text, interval, text,
    timestamptz
);
