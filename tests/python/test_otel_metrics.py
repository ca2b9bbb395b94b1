"""The same metrics through OpenTelemetry: ``export_families`` over a worker and the database.

A MeterProvider with the SDK's in-memory reader stands for whatever exporter an application
uses. A real worker drains a known workload; the collected instruments must carry the numbers
its ``/metrics`` page shows (tasks claimed and completed, the handler-seconds histogram as
bucket/sum/count counters), and the database's families (``dashboard.metrics_families``) the
tasks left ready.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from singularity_workflow import Client, Worker, export_families

metrics_sdk = pytest.importorskip("opentelemetry.sdk.metrics")
export_sdk = pytest.importorskip("opentelemetry.sdk.metrics.export")


def collected(reader: Any) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """Return ``{instrument: [(attributes, value), ...]}`` of one collection."""
    out: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    out.setdefault(metric.name, []).append((dict(point.attributes), point.value))
    return out


def noop(_input: Any) -> str:
    """Do nothing."""
    return "ok"


class Flow:
    """Three runs' worth of one distributed step on its own queue."""

    __workflow_slug__ = "otel_metrics_flow"
    __workflow_steps__ = [("only", noop, {"execution": "distributed", "queue": "otel_q"})]


def test_worker_and_database_metrics_reach_an_opentelemetry_reader(db_url: str) -> None:
    from singularity_workflow.dashboard import metrics_families

    reader = export_sdk.InMemoryMetricReader()
    provider = metrics_sdk.MeterProvider(metric_readers=[reader])
    with Client(db_url) as client:
        client.register_flow(Flow)
        runs = [client.start_flow("otel_metrics_flow", {"i": i}) for i in range(3)]
        worker = Worker(db_url, ["otel_q"], shutdown_grace=5)
        worker.run_in_thread()
        try:
            deadline = time.monotonic() + 30
            while any(client.get_run_status(r).status != "completed" for r in runs):
                assert time.monotonic() < deadline, "the runs did not complete"
                time.sleep(0.05)
            # The instruments are made from one reading: start exporting once the worker runs.
            export = export_families(worker.metric_families, meter_provider=provider)
            seen = collected(reader)
        finally:
            worker.stop(wait_for_tasks=False)
            assert worker.join(10)
        completed = seen["singularity_workflow_worker_tasks_completed"]
        assert completed == [({"worker_id": worker.worker_id}, 3)]
        assert export.instruments["singularity_workflow_worker_tasks_completed"] == "counter"
        assert seen["singularity_workflow_worker_tasks_claimed"][0][1] == 3
        handler_counts = seen["singularity_workflow_worker_handler_duration_seconds_count"]
        assert sum(v for _, v in handler_counts) == 3
        buckets = seen["singularity_workflow_worker_handler_duration_seconds_bucket"]
        assert {a["le"] for a, _ in buckets} >= {"0.001", "+Inf"}
        assert max(v for _, v in buckets) == 3  # the +Inf bucket holds every observation

        # The database side: one more run, not served, is one ready task of the queue.
        client.start_flow("otel_metrics_flow", {"i": 99})
        db_reader = export_sdk.InMemoryMetricReader()
        db_provider = metrics_sdk.MeterProvider(metric_readers=[db_reader])
        export_families(lambda: metrics_families(client), meter_provider=db_provider)
        tasks = collected(db_reader)["singularity_workflow_tasks"]
        ready = [v for a, v in tasks if a.get("queue") == "otel_q" and a.get("state") == "ready"]
        assert ready == [1]
