"""Tracing with OpenTelemetry: one trace for a run across the caller and two worker processes.

The caller is this test process: a TracerProvider with the SDK's InMemorySpanExporter, a span
of its own around ``execute()``, which runs the flow's local step here. The flow's two
distributed steps run in two worker processes (``singularity-workflow worker``), each serving
one queue; the workflow module they import sets up a TracerProvider with an InMemorySpanExporter
of their own when ``TRACE_SPANS_FILE`` is set, and writes its finished spans to that file as
JSON when the process exits (after SIGTERM and the graceful stop). The test then checks that
every span is in the caller's trace and parented as the docs say: caller span -> enqueue span
-> one span per task execution, with the attributes and events set, a failed first attempt's
exception recorded.

Skipped without the ``otel`` extra (opentelemetry-sdk). The global tracer provider of this
process is reset after the module, so no other test traces.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.util._once import Once  # noqa: E402

from singularity_workflow import Client, Worker, execute  # noqa: E402
from tests.fixtures import import_file  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

FLOWS = '''
"""A flow with one local step and two distributed ones on separate queues."""
import atexit
import json
import os
from pathlib import Path

from singularity_workflow import Workflow, step

if os.environ.get("TRACE_SPANS_FILE"):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    _exporter = InMemorySpanExporter()
    _provider = TracerProvider()
    _provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(_provider)

    @atexit.register
    def _dump() -> None:
        out = []
        for s in _exporter.get_finished_spans():
            out.append({
                "name": s.name, "trace_id": s.context.trace_id, "span_id": s.context.span_id,
                "parent_id": s.parent.span_id if s.parent else None,
                "attributes": dict(s.attributes), "events": [e.name for e in s.events],
                "status": s.status.status_code.name,
            })
        Path(os.environ["TRACE_SPANS_FILE"]).write_text(json.dumps(out))


class Traced(Workflow):
    slug = "test_tracing.traced"

    @step(execution="local")
    def first(self, input):
        return input["run"]["n"] + 1

    @step(depends_on=["first"], execution="distributed", queue="trace_q1")
    def second(self, input):
        return input["first"] * 2

    @step(depends_on=["first"], execution="distributed", queue="trace_q2", max_attempts=2,
          base_delay=1)
    def third(self, input):
        marker = Path(os.environ.get("TRACE_MARKER", "/nonexistent"))
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("first attempt fails")
        return input["first"] * 3
'''


@pytest.fixture(scope="module")
def memory() -> Iterator[InMemorySpanExporter]:
    """Trace this process into memory for the module; reset the global provider afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    # What opentelemetry's own test helpers do (reset_trace_globals): nothing else in the
    # session should trace.
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


def start_worker(db_url: str, module_dir: Path, queue: str, spans: Path,
                 marker: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, TRACE_SPANS_FILE=str(spans), TRACE_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([str(module_dir), str(REPO / "python"), str(REPO)]))
    return subprocess.Popen(
        [sys.executable, "-m", "singularity_workflow", "--database-url", db_url, "worker",
         "-q", queue, "-i", "traced_flows", "--worker-id", f"trace-{queue}",
         "--poll-interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_registered(db_url: str, ids: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            got = {r[0] for r in conn.execute("select worker_id from workflow.workers"
                                              " where stopped_at is null")}
            if ids <= got:
                return
            assert time.monotonic() < deadline, f"workers {ids - got} did not register"
            time.sleep(0.1)


def test_one_trace_across_the_caller_and_two_worker_processes(
    db_url: str, tmp_path: Path, memory: InMemorySpanExporter
) -> None:
    import json

    (tmp_path / "traced_flows.py").write_text(textwrap.dedent(FLOWS))
    mod = import_file(tmp_path / "traced_flows.py")
    marker = tmp_path / "marker"
    files = {q: tmp_path / f"spans_{q}.json" for q in ("trace_q1", "trace_q2")}
    procs = [start_worker(db_url, tmp_path, q, f, marker) for q, f in files.items()]
    try:
        wait_registered(db_url, {"trace-trace_q1", "trace-trace_q2"})
        tracer = trace.get_tracer("test")
        with Client(db_url) as client, tracer.start_as_current_span("caller") as root:
            result = execute(mod.Traced, {"n": 1}, client=client, timeout=60)
        assert result.output is not None
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=30)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs

    mine = [
        {"name": s.name, "trace_id": s.context.trace_id, "span_id": s.context.span_id,
         "parent_id": s.parent.span_id if s.parent else None,
         "attributes": dict(s.attributes or {}), "events": [e.name for e in s.events],
         "status": s.status.status_code.name}
        for s in memory.get_finished_spans()
    ]
    theirs = {q: json.loads(f.read_text()) for q, f in files.items()}
    trace_id = root.get_span_context().trace_id
    run_id = str(result.run_id)
    spans = [s for s in mine + theirs["trace_q1"] + theirs["trace_q2"]
             if s["attributes"].get("workflow.run_id", run_id) == run_id]
    assert {s["trace_id"] for s in spans} == {trace_id}, "not one trace"

    enqueue = [s for s in mine if s["name"] == "workflow.enqueue test_tracing.traced"]
    assert len(enqueue) == 1 and enqueue[0]["parent_id"] == root.get_span_context().span_id
    parent = enqueue[0]["span_id"]

    def tasks(group: list[dict[str, Any]], step_slug: str) -> list[dict[str, Any]]:
        return [s for s in group if s["name"] == f"workflow.task test_tracing.traced.{step_slug}"]

    first, second, third = (tasks(mine, "first"), tasks(theirs["trace_q1"], "second"),
                            tasks(theirs["trace_q2"], "third"))
    assert len(first) == 1 and len(second) == 1 and len(third) == 2
    for s in [*first, *second, *third]:
        assert s["parent_id"] == parent, s
        a = s["attributes"]
        assert a["workflow.run_id"] == run_id and a["workflow.flow"] == "test_tracing.traced"
        assert a["workflow.version"] == 1 and isinstance(a["workflow.task_id"], int)
        assert s["events"][:2] == ["claimed", "handler.start"]
    assert first[0]["attributes"]["workflow.queue"] == "local"
    assert second[0]["attributes"]["workflow.queue"] == "trace_q1"
    assert second[0]["attributes"]["workflow.worker"] == "trace-trace_q1"
    assert second[0]["events"][-1] == "completed" and second[0]["status"] == "UNSET"
    failed, retried = sorted(third, key=lambda s: s["attributes"]["workflow.attempt"])
    assert failed["attributes"]["workflow.attempt"] == 1 and failed["status"] == "ERROR"
    assert "exception" in failed["events"] and failed["events"][-1] == "failed"
    assert retried["attributes"]["workflow.attempt"] == 2 and retried["events"][-1] == "completed"
    assert retried["attributes"]["workflow.worker"] == "trace-trace_q2"


def test_a_corrupt_stored_trace_context_is_ignored_with_a_warning(
    db_url: str, memory: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    with Client(db_url) as client:
        client.register_flow({"slug": "trace_corrupt", "steps": [
            {"slug": "only", "execution": "distributed", "queue": "trace_bad"}]})
        with psycopg.connect(db_url, autocommit=True) as conn:
            run_id = conn.execute(
                "select workflow.start_flow('trace_corrupt', trace_context =>"
                " '{\"traceparent\": \"not-a-trace\"}')").fetchone()[0]  # type: ignore[index]
        from singularity_workflow import register_handlers
        register_handlers("trace_corrupt", {"only": lambda input: "fine"})
        worker = Worker(client, ["trace_bad"], worker_id="trace-bad", shutdown_grace=5)
        with caplog.at_level(logging.WARNING, logger="singularity_workflow.tracing"):
            worker.run_in_thread()
            try:
                deadline = time.monotonic() + 20
                while client.get_run_status(run_id).status == "in_progress":
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            finally:
                worker.stop()
                assert worker.join(10)
        assert client.get_run_status(run_id).status == "completed"
    assert any("ignoring its stored trace context" in r.getMessage() and str(run_id) in
               r.getMessage() for r in caplog.records)
    span = [s for s in memory.get_finished_spans()
            if s.name == "workflow.task trace_corrupt.only"]
    assert len(span) == 1 and span[0].parent is None  # a root span, the task unharmed
