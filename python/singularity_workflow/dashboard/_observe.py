"""The dashboard's observability pages: ``/metrics`` (Prometheus), ``/charts``, run timelines.

``GET /charts?window=15m|1h|24h`` shows the last window as server-drawn SVG charts
(:mod:`._charts`): throughput and depth per queue, claim latency percentiles, failures, runs by
status, from ``workflow.metrics_series`` and ``workflow.run_series`` (60 buckets each); the page
re-fetches ``/charts/live`` every 5 seconds. ``GET /runs/{run_id}/timeline`` is a run's tasks as
a Gantt-style chart (queue wait, run time, retries), which the run page re-fetches every 2 s.

``/metrics``: what the database says now.

Every sample comes from one read each, through the client: ``workflow.metrics`` (per queue and
flow: tasks by state now, and over the window ``?window=`` seconds, default 300, the completed
and failed tasks and the claim latency and duration percentiles), pgmq's metrics (messages ever
sent per queue: a true counter), the bounded run counts per state and the live workers. A scrape
therefore costs a handful of queries whose cost follows the live work and the window, never the
whole history (see the header of ``sql/functions/metrics.sql``).

The window values are gauges, not counters: they are "over the last N seconds" as of the scrape
(``singularity_workflow_window_seconds`` says N), which is what a dashboard wants from a
database that keeps no running totals. The worker's own counters (``--metrics-port``) are true
``_total`` counters.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from singularity_workflow._client import Client
from singularity_workflow._metrics import CONTENT_TYPE, Family, render
from singularity_workflow._types import run_uuid
from singularity_workflow.dashboard import _queries as queries
from singularity_workflow.dashboard._charts import TimelineRow, series_chart, timeline_chart

__all__ = [
    "CHART_WINDOWS", "DEFAULT_WINDOW", "charts", "metrics_families", "metrics_text",
    "observe_routes",
]

#: The windows the charts page offers: its ?window= value, label and seconds.
CHART_WINDOWS: Final = {"15m": ("15 min", 900), "1h": ("1 hour", 3600), "24h": ("24 hours", 86_400)}
#: Buckets per chart (one point per bucket: 15 s, 1 min, 24 min for the three windows).
BUCKETS: Final = 60
#: Queues drawn per chart at most (the busiest), so a legend stays readable.
MAX_QUEUES: Final = 6
#: Tasks drawn on a run's timeline at most.
TIMELINE_TASKS: Final = 100

Render = Callable[[Request, str, dict[str, Any]], Response]

#: Seconds of history a scrape's window covers unless ``?window=`` says otherwise.
DEFAULT_WINDOW: Final = 300.0
#: The longest window a scrape may ask for (a day: the default horizon of workflow.metrics).
MAX_WINDOW: Final = 86_400.0
_STATES: Final = ("ready", "waiting_on_limits", "delayed", "paused", "running")
_P = "singularity_workflow_"


def metrics_text(client: Client, window: float = DEFAULT_WINDOW) -> str:
    """Read the engine's state and write it in the Prometheus text format."""
    return render(metrics_families(client, window))


def metrics_families(client: Client, window: float = DEFAULT_WINDOW) -> list[Family]:
    """Read the engine's state as metric families: what ``/metrics`` renders.

    For OpenTelemetry: ``export_families(lambda: metrics_families(client))`` (the ``otel``
    extra); each collection then reads the database once.
    """
    rows = client.metrics(window)
    tasks = Family(_P + "tasks", "Live tasks per queue, flow and state (ready: claimable now;"
                   " waiting_on_limits: under a full limit; delayed: backoff or start delay;"
                   " paused: of paused runs; running: claimed).", "gauge")
    oldest = Family(_P + "oldest_ready_task_age_seconds",
                    "How long the longest-waiting ready task has been claimable.", "gauge")
    completed = Family(_P + "window_tasks_completed",
                       "Tasks completed in the window (see singularity_workflow_window_seconds).",
                       "gauge")
    failed = Family(_P + "window_tasks_failed",
                    "Tasks failed for good in the window (retried attempts excluded).", "gauge")
    latency = Family(_P + "claim_latency_seconds",
                     "From a task being ready to its first claim, over the window's claims.",
                     "gauge")
    duration = Family(_P + "task_duration_seconds",
                      "From claim to completion of the window's completed tasks.", "gauge")
    for m in rows:
        labels = {"queue": m.queue, "flow": m.flow_slug}
        for state in _STATES:
            tasks.add(getattr(m, state), {**labels, "state": state})
        if m.oldest_ready_seconds is not None:
            oldest.add(max(0.0, m.oldest_ready_seconds), labels)
        completed.add(m.completed, labels)
        failed.add(m.failed, labels)
        for quantile, lat, dur in (("0.5", m.claim_latency_p50_seconds, m.duration_p50_seconds),
                            ("0.95", m.claim_latency_p95_seconds, m.duration_p95_seconds)):
            if lat is not None:
                latency.add(lat, {**labels, "quantile": quantile})
            if dur is not None:
                duration.add(dur, {**labels, "quantile": quantile})
    win = Family(_P + "window_seconds", "The window of the window_* and latency gauges.", "gauge")
    win.add(window)
    sent = Family(_P + "queue_messages_sent_total",
                  "Messages ever sent to each workflow queue (pgmq).", "counter")
    for q in queries.queues(client):
        if q["sent"] is not None:
            sent.add(q["sent"], {"queue": q["queue"]})
    runs = Family(_P + "runs", "Runs per state (counted up to 10001 per stored status).",
                  "gauge")
    for state, n in queries.run_counts(client).items():
        runs.add(n, {"state": state})
    workers = Family(_P + "workers", "Live registered workers.", "gauge")
    workers.add(len(queries.workers(client)))
    return [tasks, oldest, completed, failed, latency, duration, win, sent, runs, workers]


def charts(client: Client, window: str) -> dict[str, Any]:
    """Read a window's series and draw its charts; the context of the charts templates."""
    label, seconds = CHART_WINDOWS[window]
    rows = client.metrics_series(seconds, BUCKETS)
    runs = client.run_series(seconds, BUCKETS)
    times = [r["bucket_start"] for r in runs]
    width = seconds / BUCKETS
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_queue.setdefault(r["queue"], []).append(r)
    busiest = sorted(by_queue, key=lambda q: -sum(r["claimed"] + r["depth"] for r in by_queue[q]))
    shown = sorted(busiest[:MAX_QUEUES])

    def per_queue(key: str, scale: float = 1.0) -> dict[str, list[float | None]]:
        return {q: [None if r[key] is None else r[key] * scale for r in by_queue[q]]
                for q in shown}

    latency: dict[str, list[float | None]] = {}
    for q in shown:
        latency[f"{q} p50"] = [r["claim_latency_p50_seconds"] for r in by_queue[q]]
        latency[f"{q} p95"] = [r["claim_latency_p95_seconds"] for r in by_queue[q]]
    drawn = [
        series_chart("chart-throughput", "Throughput per queue (tasks completed)", times,
                     per_queue("completed", 1 / width), unit="tasks/s"),
        series_chart("chart-depth", "Queue depth (ready, not claimed)", times,
                     per_queue("depth"), unit="tasks"),
        series_chart("chart-latency", "Claim latency (ready to first claim)", times, latency,
                     unit="s"),
        series_chart("chart-failures", "Failures per queue (failed for good)", times,
                     per_queue("failed"), unit="tasks", bars=True),
        series_chart("chart-runs", "Runs by status", times, {
            k: [float(r[k]) for r in runs] for k in ("started", "completed", "failed",
                                                     "cancelled")}, unit="runs", bars=False),
    ]
    return {"window": window, "windows": CHART_WINDOWS, "label": label, "charts": drawn,
            "bucket_seconds": width, "queues": shown, "hidden": len(busiest) - len(shown),
            "now": datetime.now(UTC).isoformat(" ", "seconds")}


def timeline(client: Client, run_id: str) -> Any:
    """Draw a run's timeline (None for an unknown run)."""
    found = queries.timeline(client, run_id, limit=TIMELINE_TASKS)
    if found is None:
        return None
    end = found["ended_at"] or datetime.now(UTC)
    rows = [TimelineRow(*t) for t in found["tasks"]]
    return timeline_chart(rows, found["started_at"], end,
                          more=max(0, found["total"] - len(rows)))


def observe_routes(client: Client, render_page: Render) -> list[Route]:
    """Return the routes of this module, to add to the dashboard's."""

    def window_of(request: Request) -> str:
        raw = request.query_params.get("window", "1h")
        return raw if raw in CHART_WINDOWS else "1h"

    async def charts_page(request: Request) -> Response:
        """GET /charts?window=: the charts of the window, refreshed by the page's script."""
        ctx = await asyncio.to_thread(charts, client, window_of(request))
        return render_page(request, "charts.html", ctx)

    async def charts_fragment(request: Request) -> Response:
        """GET /charts/live?window=: the charts alone, for the page's refresh."""
        ctx = await asyncio.to_thread(charts, client, window_of(request))
        return render_page(request, "_charts_live.html", ctx)

    async def run_timeline(request: Request) -> Response:
        """GET /runs/{run_id}/timeline: the run's tasks as an SVG timeline fragment."""
        try:
            run_uuid(request.path_params["run_id"])
        except (TypeError, ValueError):
            return PlainTextResponse("not a run id", status_code=404)
        svg = await asyncio.to_thread(timeline, client, request.path_params["run_id"])
        if svg is None:
            return PlainTextResponse("no such run", status_code=404)
        return Response(str(svg), media_type="text/html; charset=utf-8")

    async def metrics(request: Request) -> Response:
        """GET /metrics[?window=seconds]: the Prometheus text format."""
        raw = request.query_params.get("window")
        try:
            window = DEFAULT_WINDOW if raw is None else float(raw)
        except ValueError:
            window = math.nan
        if not 0 < window <= MAX_WINDOW:
            return PlainTextResponse(
                f"window must be a number of seconds in (0, {MAX_WINDOW:.0f}], got {raw!r}\n",
                status_code=400)
        body = await asyncio.to_thread(metrics_text, client, window)
        return Response(body, media_type=CONTENT_TYPE)

    return [Route("/metrics", metrics), Route("/charts", charts_page),
            Route("/charts/live", charts_fragment),
            Route("/runs/{run_id}/timeline", run_timeline)]
