"""Operations on runs: start them, read their status, list, cancel, pause, resume, retry.

One status path: a run's status is ``workflow.get_run_status`` (decoded as ``RunStatus``);
nothing here reads the ``runs`` table directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from uuid import UUID

from psycopg.types.json import Jsonb

from singularity_workflow._db import Operation, Rows, clean_text, first_value, no_result, to_jsonb
from singularity_workflow._operations._args import need_bool, need_int, need_text, need_type
from singularity_workflow._tracing import enqueue_context
from singularity_workflow._types import (
    DEFAULT_CANCEL_REASON,
    OrderBy,
    RunStatus,
    WorkflowRun,
    order_by_args,
    run_uuid,
)

__all__ = [
    "DebounceMode",
    "cancel_workflow_run",
    "enforce_deadlines",
    "get_run_status",
    "get_step_outputs",
    "list_workflow_runs",
    "maintain",
    "pause_workflow_run",
    "resume_workflow_run",
    "resume_from_step",
    "retry_failed_workflow",
    "start_flow",
    "start_flows",
]

#: How starts with one debounce key coalesce: ``debounce`` (the last input wins, the run starts
#: when the interval has been quiet) or ``throttle`` (the first start runs, the rest within the
#: interval are dropped and return it).
DebounceMode = Literal["debounce", "throttle"]

# Named arguments, in the order of list_workflow_runs' columns (WorkflowRun unpacks them).
_LIST_RUNS: Final = (
    "select run_id, flow_slug, status, state, remaining_steps, error_message, retry_of,"
    " started_at, completed_at, failed_at, paused_at, cancelled_at"
    " from workflow.list_workflow_runs(status_filter => %s, workflow_slug => %s,"
    " limit_rows => %s, offset_rows => %s, order_by => %s, order_dir => %s)"
)


def _run_status(rows: Rows) -> RunStatus:
    """Decode ``workflow.get_run_status``'s JSON."""
    return RunStatus.from_json(rows[0][0])


def _workflow_runs(rows: Rows) -> list[WorkflowRun]:
    """Decode ``workflow.list_workflow_runs`` rows (column order = field order)."""
    return [WorkflowRun(*row) for row in rows]


def _run_ids(rows: Rows) -> list[UUID]:
    """Decode one run id per row."""
    return [row[0] for row in rows]


def _interval(value: timedelta | float | None, what: str) -> timedelta | None:
    """Return a window given as a timedelta or as seconds, as a timedelta (psycopg: interval)."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a timedelta or a number of seconds, got {value!r}")
    return timedelta(seconds=value)


def _trace(flow_slug: str, runs: int = 1) -> Jsonb | None:
    """Return the trace context to store with new runs: the enqueue span's (None: not tracing)."""
    carrier = enqueue_context(flow_slug, runs)
    return None if carrier is None else to_jsonb(carrier, "trace context")


def start_flow(
    flow_slug: str,
    input: Any,
    *,
    run_id: UUID | None = None,
    timeout_seconds: int | None = None,
    owner: str | None = None,
    concurrency_key: str | None = None,
    priority: int | None = None,
    version: int | None = None,
    idempotency_key: str | None = None,
    dedupe_window: timedelta | float | None = None,
    debounce_key: str | None = None,
    debounce_interval: timedelta | float | None = None,
    debounce_mode: DebounceMode = "debounce",
    start_at: datetime | None = None,
) -> Operation[UUID]:
    """Start a run of ``flow_slug`` (``workflow.start_flow``); decodes its run id.

    ``version``: the flow version to run (None: the current one). ``dedupe_window`` None keeps
    the server's default (24 hours).
    """
    need_text(flow_slug, "flow_slug")
    rid = None if run_id is None else run_uuid(run_id)
    need_int(timeout_seconds, "timeout_seconds", optional=True)
    need_int(version, "version", optional=True)
    return Operation(
        "select workflow.start_flow(flow_slug => %s, input => %s, run_id => %s,"
        " timeout_seconds => %s, owner => %s, concurrency_key => %s, priority => %s,"
        " version => %s, idempotency_key => %s,"
        " dedupe_window => coalesce(%s::interval, interval '24 hours'), debounce_key => %s,"
        " debounce_interval => %s::interval, debounce_mode => %s, start_at => %s,"
        " trace_context => %s)",
        [
            flow_slug,
            to_jsonb(input, "run input"),
            rid,
            timeout_seconds,
            owner,
            concurrency_key,
            priority,
            version,
            idempotency_key,
            _interval(dedupe_window, "dedupe_window"),
            debounce_key,
            _interval(debounce_interval, "debounce_interval"),
            debounce_mode,
            start_at,
            _trace(flow_slug),
        ],
        first_value,
    )


def start_flows(
    flow_slug: str,
    inputs: Sequence[Any],
    *,
    run_ids: Sequence[UUID | None] | None = None,
    timeout_seconds: int | None = None,
    concurrency_key: str | None = None,
    priority: int | None = None,
    version: int | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    dedupe_window: timedelta | float | None = None,
    start_at: datetime | None = None,
) -> Operation[list[UUID]]:
    """Start one run per input in one call (``workflow.start_flows``); decodes the ids in order."""
    need_text(flow_slug, "flow_slug")
    # A dict or a string is a Sequence-like slip for one input: the batch is a list of inputs.
    need_type(inputs, "inputs", (list, tuple), "a list of run inputs")
    need_int(timeout_seconds, "timeout_seconds", optional=True)
    return Operation(
        "select run_id from workflow.start_flows(flow_slug => %s, inputs => %s::jsonb[],"
        " run_ids => %s::uuid[], timeout_seconds => %s, concurrency_key => %s, priority => %s,"
        " version => %s, idempotency_keys => %s::text[],"
        " dedupe_window => coalesce(%s::interval, interval '24 hours'), start_at => %s,"
        " trace_context => %s)",
        [
            flow_slug,
            [to_jsonb(value, "run input") for value in inputs],
            None
            if run_ids is None
            else [None if r is None else run_uuid(r, "run_ids[]") for r in run_ids],
            timeout_seconds,
            concurrency_key,
            priority,
            version,
            None if idempotency_keys is None else list(idempotency_keys),
            _interval(dedupe_window, "dedupe_window"),
            start_at,
            _trace(flow_slug, len(inputs)),
        ],
        _run_ids,
    )


def get_run_status(run_id: UUID | str) -> Operation[RunStatus]:
    """Read a run's progress, steps, timings and error (``workflow.get_run_status``)."""
    return Operation("select workflow.get_run_status(%s)", [run_uuid(run_id)], _run_status)


def get_step_outputs(run_id: UUID | str) -> Operation[dict[str, Any]]:
    """Read every completed step's output by slug (``workflow.get_step_outputs``)."""
    return Operation("select workflow.get_step_outputs(%s)", [run_uuid(run_id)], first_value)


def list_workflow_runs(
    status: str | None = None,
    workflow_slug: str | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    order_by: OrderBy = ("desc", "inserted_at"),
) -> Operation[list[WorkflowRun]]:
    """List runs filtered, ordered and paged (``workflow.list_workflow_runs``)."""
    need_text(status, "status", optional=True)
    need_text(workflow_slug, "workflow_slug", optional=True)
    need_int(limit, "limit")
    need_int(offset, "offset")
    column, direction = order_by_args(order_by)
    return Operation(
        _LIST_RUNS, [status, workflow_slug, limit, offset, column, direction], _workflow_runs
    )


def cancel_workflow_run(
    run_id: UUID | str, reason: str = DEFAULT_CANCEL_REASON, *, force: bool = False
) -> Operation[None]:
    """Cancel a run (``workflow.cancel_workflow_run``)."""
    need_text(reason, "reason")
    need_bool(force, "force")
    return Operation(
        "select workflow.cancel_workflow_run(run_id => %s, reason => %s, force => %s)",
        [run_uuid(run_id), clean_text(reason), force],
        no_result,
    )


def pause_workflow_run(run_id: UUID | str) -> Operation[None]:
    """Pause a run (``workflow.pause_workflow_run``, idempotent)."""
    return Operation(
        "select workflow.pause_workflow_run(run_id => %s)", [run_uuid(run_id)], no_result
    )


def resume_workflow_run(run_id: UUID | str) -> Operation[None]:
    """Resume a paused run (``workflow.resume_workflow_run``, idempotent)."""
    return Operation(
        "select workflow.resume_workflow_run(run_id => %s)", [run_uuid(run_id)], no_result
    )


def retry_failed_workflow(
    run_id: UUID | str,
    *,
    skip_completed: bool = True,
    reset_all: bool = False,
    owner: str | None = None,
    on_current: bool = False,
) -> Operation[UUID]:
    """Retry a failed run as a new run (``workflow.retry_failed_workflow``); decodes its id.

    ``on_current``: run on the flow's current version rather than the failed run's own.
    """
    need_bool(skip_completed, "skip_completed")
    need_bool(reset_all, "reset_all")
    need_bool(on_current, "on_current")
    return Operation(
        "select workflow.retry_failed_workflow(run_id => %s, skip_completed => %s,"
        " reset_all => %s, owner => %s, on_current => %s)",
        [run_uuid(run_id), skip_completed, reset_all, owner, on_current],
        first_value,
    )


def resume_from_step(
    run_id: UUID | str, step: str, *, reason: str | None = None, owner: str | None = None
) -> Operation[UUID]:
    """Restart a failed or completed run from ``step`` (``workflow.resume_from_step``)."""
    need_text(step, "step")
    need_text(reason, "reason", optional=True)
    need_text(owner, "owner", optional=True)
    return Operation(
        "select workflow.resume_from_step(run_id => %s, step_slug => %s, reason => %s,"
        " owner => %s)",
        [run_uuid(run_id), step, None if reason is None else clean_text(reason), owner],
        first_value,
    )


def enforce_deadlines(*, max_runs: int = 100) -> Operation[int]:
    """Cancel runs past their deadline (``workflow.enforce_deadlines``); decodes how many."""
    need_int(max_runs, "max_runs")
    return Operation(
        "select workflow.enforce_deadlines(max_runs => %s)", [max_runs], first_value
    )


def maintain() -> Operation[dict[str, Any]]:
    """Run the engine's housekeeping once (``workflow.maintain``); decodes its report."""
    return Operation("select workflow.maintain()", [], first_value)
