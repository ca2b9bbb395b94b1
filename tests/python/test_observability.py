"""Observability: the dashboard's /metrics, a worker's --metrics-port, and structured logs.

The metrics are checked against workloads whose outcome the test knows: tasks claimed,
completed and failed by hand through the client (for the dashboard's view of the database), and
runs served by a real Worker in a thread with a handler that fails on odd inputs (for the
worker's own counters). Each scrape is a real HTTP request: the dashboard through Starlette's
TestClient, the worker's endpoint over a loopback socket.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import time
import urllib.request
import warnings
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from singularity_workflow import Client, Worker, Workflow, step
from singularity_workflow._errors import MetricsPortInUse
from singularity_workflow._logging import configure
from singularity_workflow._metrics import Histogram, render
from singularity_workflow.cli import main
from singularity_workflow.dashboard import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse the text exposition format into {(name, labels): value}; fail on a bad line."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in {"counter", "gauge", "histogram"}, line
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    for name, kind in types.items():
        if kind == "counter":
            assert name.endswith("_total"), f"counter {name} must end in _total"
    return out


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# ----- the dashboard's /metrics -----------------------------------------------------------------


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


def test_dashboard_metrics_match_a_known_workload(db_url: str, client: Client) -> None:
    client.register_flow({"slug": "obs_flow", "steps": [
        {"slug": "only", "execution": "distributed", "queue": "obs_q", "max_attempts": 1}]})
    for i in range(5):
        client.start_flow("obs_flow", {"i": i})
    got = client.claim_tasks("obs_q", 3, worker_id="obs-test")
    assert len(got) == 3
    time.sleep(0.05)  # a measurable duration for the completed task
    client.complete_tasks([(got[0].task_id, got[0].attempt, {"ok": True})])
    client.fail_tasks([(got[1].task_id, got[1].attempt, "boom", True)])
    # got[2] stays running; two tasks were never claimed.

    with TestClient(create_app(db_url), base_url="http://localhost") as web:
        response = web.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        s = parse(response.text)
        bad = web.get("/metrics", params={"window": "-1"})
        assert bad.status_code == 400 and "window must be" in bad.text

    labels = {"queue": "obs_q", "flow": "obs_flow"}
    assert value(s, "singularity_workflow_tasks", **labels, state="ready") == 2
    assert value(s, "singularity_workflow_tasks", **labels, state="running") == 1
    assert value(s, "singularity_workflow_tasks", **labels, state="delayed") == 0
    assert value(s, "singularity_workflow_tasks", **labels, state="waiting_on_limits") == 0
    assert value(s, "singularity_workflow_window_tasks_completed", **labels) == 1
    assert value(s, "singularity_workflow_window_tasks_failed", **labels) == 1
    assert value(s, "singularity_workflow_window_seconds") == 300
    duration = value(s, "singularity_workflow_task_duration_seconds", **labels, quantile="0.5")
    assert duration is not None and 0.05 <= duration < 30
    latency = value(s, "singularity_workflow_claim_latency_seconds", **labels, quantile="0.95")
    assert latency is not None and 0 <= latency < 30
    oldest = value(s, "singularity_workflow_oldest_ready_task_age_seconds", **labels)
    assert oldest is not None and oldest >= 0.05
    assert value(s, "singularity_workflow_queue_messages_sent_total", queue="obs_q") == 5
    assert value(s, "singularity_workflow_runs", state="completed") == 1
    assert value(s, "singularity_workflow_runs", state="failed") == 1
    assert value(s, "singularity_workflow_runs", state="running") == 3

    # The same numbers from the CLI, as JSON.
    out = CliRunner().invoke(main, ["--database-url", db_url, "metrics", "--json"])
    assert out.exit_code == 0, out.output
    row = next(r for r in json.loads(out.output) if r["flow_slug"] == "obs_flow")
    assert (row["ready"], row["running"], row["completed"], row["failed"]) == (2, 1, 1, 1)


def test_histogram_renders_cumulative_buckets_sum_and_count() -> None:
    h = Histogram("x_seconds", "help", (0.1, 1.0), ("step",))
    for v in (0.05, 0.5, 0.5, 3.0):
        h.observe(v, "a\"b")
    s = parse(render([h.family()]))
    assert value(s, "x_seconds_bucket", step='a\\"b', le="0.1") == 1
    assert value(s, "x_seconds_bucket", step='a\\"b', le="1") == 3
    assert value(s, "x_seconds_bucket", step='a\\"b', le="+Inf") == 4
    assert value(s, "x_seconds_count", step='a\\"b') == 4
    assert value(s, "x_seconds_sum", step='a\\"b') == pytest.approx(4.05)


# ----- a worker's own metrics ---------------------------------------------------------------------


class Odd(Workflow):
    """Fails for odd inputs (one attempt), so completions and failures are known in advance."""

    slug = "test_observability.odd"

    @step(execution="distributed", queue="obs_w", max_attempts=1)
    def check(self, input: dict[str, Any]) -> int:
        """Log a line of the application's own, then fail on odd numbers."""
        n = int(input["run"]["n"])
        logging.getLogger("app").info("checking %d", n)
        if n % 2:
            raise ValueError(f"{n} is odd")
        return n


def wait_runs(client: Client, run_ids: list[UUID], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while any(client.get_run_status(r).status == "in_progress" for r in run_ids):
        assert time.monotonic() < deadline, "runs did not finish"
        time.sleep(0.05)


def scrape(address: tuple[str, int]) -> str:
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(r.read().decode())


def test_worker_metrics_port_counts_its_tasks_and_logs_carry_task_fields(
    db_url: str, client: Client
) -> None:
    logs = io.StringIO()
    handler = configure("INFO", "json", stream=logs)
    worker = Worker(db_url, ["obs_w"], metrics_port=0, worker_id="obs-worker", shutdown_grace=5)
    try:
        worker.run_in_thread()
        address = worker.metrics_address
        assert address is not None and address[1] > 0
        runs = [client.start_flow(Odd, {"n": n}) for n in range(6)]  # 3 even, 3 odd
        wait_runs(client, runs)
        deadline = time.monotonic() + 10
        while True:  # the last flush may land just after the runs end
            s = parse(scrape(address))
            done = value(s, "singularity_workflow_worker_tasks_completed_total",
                         worker_id="obs-worker")
            failed = value(s, "singularity_workflow_worker_tasks_failed_total",
                           worker_id="obs-worker")
            if (done, failed) == (3, 3) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        worker.stop()
        assert worker.join(10)
        logging.getLogger().removeHandler(handler)
    me = {"worker_id": "obs-worker"}
    assert value(s, "singularity_workflow_worker_tasks_claimed_total", **me) == 6
    assert (done, failed) == (3, 3)
    assert value(s, "singularity_workflow_worker_reconnects_total", **me) == 0
    step_labels = {"flow": Odd.slug, "step": "check"}
    assert value(s, "singularity_workflow_worker_handler_duration_seconds_count",
                 **step_labels, outcome="ok") == 3
    assert value(s, "singularity_workflow_worker_handler_duration_seconds_count",
                 **step_labels, outcome="error") == 3
    # Every result was reported once, in some number of batches.
    assert value(s, "singularity_workflow_worker_flush_batch_size_sum") == 6
    assert worker.metrics_address is None  # closed with the worker

    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert lines, "nothing was logged"
    app = [x for x in lines if x["logger"] == "app"]
    assert len(app) == 6
    for x in app:
        assert UUID(x["run_id"]) in runs and x["step"] == "check" and x["attempt"] == 1
        assert x["flow"] == Odd.slug and x["worker_id"] == "obs-worker" and x["level"] == "info"
    failures = [x for x in lines if "is odd" in x["msg"] and x["logger"].endswith(".worker")]
    assert len(failures) == 3
    assert all(x["step"] == "check" and x["attempt"] == 1 and "run_id" in x for x in failures)


def test_metrics_port_in_use_is_a_clear_error_at_start(db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = Worker(db_url, ["obs_w"], metrics_port=port)
        with pytest.raises(MetricsPortInUse) as err:
            worker.run_in_thread()
        assert err.value.code == "WF046" and str(port) in str(err.value)
        assert "--metrics-port" in str(err.value)
        out = CliRunner().invoke(main, ["--database-url", db_url, "worker", "-q", "obs_w",
                                        "--metrics-port", str(port)])
        assert out.exit_code == 1
        assert f"error: metrics_port {port} on 127.0.0.1 is not available" in out.output


@pytest.mark.parametrize("fmt", ["kv", "json", "text"])
def test_log_formats_write_task_fields(fmt: str) -> None:
    from types import SimpleNamespace

    stream = io.StringIO()
    handler = configure("DEBUG", fmt, stream=stream)
    try:
        task = SimpleNamespace(run_id=UUID(int=7), flow_slug="f", step_slug="s", attempt=2,
                               task_id=9)
        from singularity_workflow._logging import task_fields
        logging.getLogger("singularity_workflow.worker").info(
            'task "x" failed', extra=task_fields(task, worker_id="w 1"))
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    run = str(UUID(int=7))
    if fmt == "json":
        got = json.loads(line)
        assert (got["run_id"], got["step"], got["attempt"], got["task_id"]) == (run, "s", 2, 9)
        assert got["msg"] == 'task "x" failed' and got["level"] == "info"
    elif fmt == "kv":
        assert f"run_id={run} flow=f step=s attempt=2 task_id=9" in line
        assert 'msg="task \\"x\\" failed"' in line and 'worker_id="w 1"' in line
        assert line.split()[1] == "level=info"
    else:
        assert line.endswith(f"[run={run} step=s#2]")
    with pytest.raises(ValueError, match="log format must be one of"):
        configure("INFO", "xml")
