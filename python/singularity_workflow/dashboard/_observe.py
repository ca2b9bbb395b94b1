"""The dashboard's Prometheus endpoint: ``GET /metrics``, what the database says now.

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
from typing import Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from singularity_workflow._client import Client
from singularity_workflow._metrics import CONTENT_TYPE, Family, render
from singularity_workflow.dashboard import _queries as queries

__all__ = ["DEFAULT_WINDOW", "metrics_text", "observe_routes"]

#: Seconds of history a scrape's window covers unless ``?window=`` says otherwise.
DEFAULT_WINDOW: Final = 300.0
#: The longest window a scrape may ask for (a day: the default horizon of workflow.metrics).
MAX_WINDOW: Final = 86_400.0
_STATES: Final = ("ready", "waiting_on_limits", "delayed", "paused", "running")
_P = "singularity_workflow_"


def metrics_text(client: Client, window: float = DEFAULT_WINDOW) -> str:
    """Read the engine's state and write it in the Prometheus text format."""
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
    return render([tasks, oldest, completed, failed, latency, duration, win, sent, runs, workers])


def observe_routes(client: Client) -> list[Route]:
    """Return the routes of this module, to add to the dashboard's (``/metrics``)."""

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

    return [Route("/metrics", metrics)]
