"""Operations that observe the engine: its metrics, and what tracing needs to know of runs.

``metrics``: ``workflow.metrics`` (live tasks per queue and flow, a window's completions,
failures and latency percentiles), read by the dashboard's ``/metrics`` and charts and the CLI.
``run_trace_info``: for the runs of claimed tasks, the trace context stored when each started,
its version number and the queue of each step, which a worker's task spans carry; a worker
asks only while tracing is enabled, once per run it has not seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final
from uuid import UUID

from singularity_workflow._db import Operation, Rows
from singularity_workflow._types import QueueMetrics, run_uuid

__all__ = ["RunTraceInfo", "metrics", "metrics_series", "run_series", "run_trace_info"]

_METRICS: Final = (
    "select queue_name, flow_slug, ready, waiting_on_limits, delayed, paused, running, completed,"
    " failed, oldest_ready_seconds, claim_latency_p50_seconds, claim_latency_p95_seconds,"
    " duration_p50_seconds, duration_p95_seconds"
    " from workflow.metrics(window_length => %s, horizon => %s)"
)
_METRICS_SERIES: Final = (
    "select bucket_start, queue_name, claimed, completed, failed, depth,"
    " claim_latency_p50_seconds, claim_latency_p95_seconds"
    " from workflow.metrics_series(window_length => %s, bucket_count => %s, horizon => %s)"
)
_METRICS_SERIES_KEYS: Final = ("bucket_start", "queue", "claimed", "completed", "failed",
                               "depth", "claim_latency_p50_seconds", "claim_latency_p95_seconds")
_RUN_SERIES: Final = (
    "select bucket_start, started, completed, failed, cancelled"
    " from workflow.run_series(window_length => %s, bucket_count => %s, horizon => %s)"
)
_RUN_SERIES_KEYS: Final = ("bucket_start", "started", "completed", "failed", "cancelled")
_RUN_TRACE_INFO: Final = (
    "select r.run_id, r.trace_context, v.version,"
    " (select jsonb_object_agg(s.step_slug, s.queue_name) from workflow.steps s"
    "  where s.version_id = r.version_id)"
    " from workflow.runs r left join workflow.flow_versions v on v.version_id = r.version_id"
    " where r.run_id = any(%s::uuid[])"
)

#: What tracing knows of a run: (trace context or None, version number, {step: queue}).
RunTraceInfo = tuple[Any, int | None, dict[str, str]]


def _seconds(value: timedelta | float, name: str) -> timedelta:
    """Return a window given as a timedelta or as seconds (the server checks its sign)."""
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise TypeError(f"{name} must be a timedelta or a number of seconds, got {value!r}")
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _metrics(rows: Rows) -> list[QueueMetrics]:
    return [QueueMetrics(*row) for row in rows]


def metrics(window: timedelta | float = 300, *,
            horizon: timedelta | float = 86_400) -> Operation[list[QueueMetrics]]:
    """Read ``workflow.metrics`` over the last ``window`` (seconds or a timedelta)."""
    return Operation(_METRICS, [_seconds(window, "window"), _seconds(horizon, "horizon")],
                     _metrics)


def _dicts(keys: tuple[str, ...]) -> Any:
    def decode(rows: Rows) -> list[dict[str, Any]]:
        return [dict(zip(keys, row, strict=True)) for row in rows]
    return decode


def metrics_series(window: timedelta | float = 3600, buckets: int = 60, *,
                   horizon: timedelta | float = 86_400) -> Operation[list[dict[str, Any]]]:
    """Read ``workflow.metrics_series``: per bucket and queue, claims, completions, depth ..."""
    return Operation(_METRICS_SERIES, [_seconds(window, "window"), buckets,
                                       _seconds(horizon, "horizon")],
                     _dicts(_METRICS_SERIES_KEYS))


def run_series(window: timedelta | float = 3600, buckets: int = 60, *,
               horizon: timedelta | float = 86_400) -> Operation[list[dict[str, Any]]]:
    """Read ``workflow.run_series``: per bucket, runs started, completed, failed, cancelled."""
    return Operation(_RUN_SERIES, [_seconds(window, "window"), buckets,
                                   _seconds(horizon, "horizon")], _dicts(_RUN_SERIES_KEYS))


def _trace_info(rows: Rows) -> dict[UUID, RunTraceInfo]:
    return {rid: (ctx, version, queues or {}) for rid, ctx, version, queues in rows}


def run_trace_info(run_ids: Sequence[UUID | str]) -> Operation[dict[UUID, RunTraceInfo]]:
    """Read the stored trace context, version and step queues of some runs, by run id."""
    return Operation(_RUN_TRACE_INFO, [[run_uuid(r) for r in run_ids]], _trace_info)
