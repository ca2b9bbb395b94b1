"""Benchmark the cost of OpenTelemetry tracing on W1 (single-step runs) through a real worker.

Why: with the ``otel`` extra and a tracer provider set, every task execution becomes a span, and
a worker reads each new run's stored trace context once (one query for every run it has not
seen, batched). The goal is a cost of at most 10% on W1, the single-step workload, where that
per-run read is paid for every task.

What it does, in a throwaway database: W1 as ``bench/worker_e2e.py`` runs it (2,000 single-step
runs with a no-op handler, drained by ONE worker process, concurrency 10), alternately with
tracing off and on, ``--reps`` times each, side by side in one run:

* **off**: the worker process has no tracer provider (OpenTelemetry may be installed; the
  engine's hooks then cost a wrapper call, a timing and a histogram update per task);
* **on**: the worker process sets an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` and an
  exporter that drops the spans (the cost of making and exporting spans, without a collector's
  network time), and every run carries a distinct stored trace context, as runs started under
  a traced caller do (so the worker reads every run's context: the worst case).

tasks/s = tasks / (last completion - first claim), from the database's timestamps; the median of
the reps of each mode and the ratio on/off are reported with the load average and core count.
Standalone only: ``python bench/tracing.py [--reps 3] [--runs 2000]``; results on stdout and in
``build/bench/tracing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT_DIR = HERE.parent / "build" / "bench"
QUEUE = "bench_trace"
FLOW = {"slug": "bench_trace", "steps": [
    {"slug": "only", "queue": QUEUE, "execution": "distributed"}]}
CONCURRENCY = 10


def serve(url: str, traced: bool) -> int:
    """Worker process: optionally trace, wait for "go", serve until "stop"; print its stats."""
    from singularity_workflow import Worker, register_handlers

    if traced:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            """Count the spans and drop them (no collector: its network is not ours to time)."""

            exported = 0

            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                Drop.exported += len(spans)
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)
    register_handlers(FLOW["slug"], {"only": lambda _input: None})
    print(json.dumps({"ready": os.getpid()}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    worker = Worker(url, queues=[QUEUE], concurrency=CONCURRENCY)
    worker.run_in_thread()
    print(json.dumps({"started": time.time()}), flush=True)
    sys.stdin.readline()
    worker.stop()
    worker.join(30)
    spans = 0
    if traced:
        provider.force_flush()
        spans = Drop.exported
    st = worker.stats
    print(json.dumps({"stats": {"completed": st.completed if st else 0, "spans": spans}}),
          flush=True)
    return 0


class WorkerProcess:
    """One ``serve`` process: start, go, stop."""

    def __init__(self, url: str, traced: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", "--database-url", url,
             *(["--traced"] if traced else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._line()

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker process exited (code {self.proc.wait()})")
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def send(self, word: str) -> dict[str, Any]:
        """Send a command line ("go", "stop"); return the process's answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()
        return self._line()

    def kill(self) -> None:
        """Make sure the process is gone (after an error)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def load_avg() -> float:
    """Return the 1-minute load average, rounded."""
    return round(os.getloadavg()[0], 2)


def drain_once(url: str, runs: int, traced: bool) -> dict[str, Any]:
    """Load ``runs`` single-step runs (with trace contexts when traced), drain them, measure."""
    import psycopg
    from worker_e2e import one, wait_runs_done  # type: ignore[import-not-found]

    with psycopg.connect(url, autocommit=True) as conn:
        reset(conn)
        for start in range(0, runs, 100):
            # A distinct W3C traceparent per run, as a traced caller would store.
            conn.execute(
                "select count(workflow.start_flow('bench_trace', jsonb_build_object('i', g),"
                " trace_context => case when %s then jsonb_build_object('traceparent',"
                " '00-' || md5(g::text) || '-' || left(md5('s' || g), 16) || '-01') end))"
                " from generate_series(%s::integer, %s::integer) as g",
                [traced, start + 1, min(runs, start + 100)])
        conn.execute("select workflow.maintain()")
        w = WorkerProcess(url, traced)
        try:
            load = load_avg()
            w.send("go")
            wait_runs_done(conn, runs)
            stats = w.send("stop")["stats"]
            w.proc.wait(30)
        finally:
            w.kill()
        seconds, tasks = one(
            conn, "select extract(epoch from max(completed_at) - min(started_at)), count(*)"
            " from workflow.tasks where status = 'completed'")
    return {"traced": traced, "tasks": tasks, "seconds": float(seconds),
            "per_s": tasks / float(seconds), "load_1m": load, "spans": stats["spans"],
            "completed_by_worker": stats["completed"]}


def reset(conn: Any) -> None:
    """Empty the run, task and queue tables so every drain starts from the same state."""
    from psycopg import sql

    conn.execute("truncate workflow.runs, workflow.step_states, workflow.tasks cascade")
    conn.execute(sql.SQL("truncate pgmq.{}, pgmq.{}").format(
        sql.Identifier(f"q_{QUEUE}"), sql.Identifier(f"a_{QUEUE}")))
    conn.execute("vacuum analyze workflow.runs, workflow.step_states, workflow.tasks")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison (or, as ``serve``, be the worker process)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("command", nargs="?", default="bench", choices=["bench", "serve"],
                   help=argparse.SUPPRESS)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                   or "postgresql://root@127.0.0.1:5432/postgres")
    p.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--reps", type=int, default=3, help="repetitions of each mode (default 3)")
    p.add_argument("--runs", type=int, default=2000, help="single-step runs per drain (2000)")
    p.add_argument("--output", type=Path, default=OUT_DIR / "tracing.json")
    args = p.parse_args(argv)
    if args.command == "serve":
        return serve(args.database_url, args.traced)

    import run as sql_bench  # type: ignore[import-not-found]
    from psycopg.conninfo import make_conninfo

    from singularity_workflow import Client, install

    out: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "load_1m_at_start": load_avg()},
        "settings": {"runs": args.runs, "reps": args.reps, "concurrency": CONCURRENCY,
                     "exporter": "BatchSpanProcessor + an exporter that drops the spans"},
        "reps": [],
    }
    with sql_bench.throwaway_database(args.database_url, "sw_bench_trace") as db:
        url = make_conninfo(args.database_url, dbname=db)
        install(url)
        with Client(url) as client:
            client.register_flow(FLOW)
        for rep in range(args.reps):
            for traced in (False, True):  # alternated, so drift in the load hits both
                print(f"tracing: W1 {args.runs} runs, tracing {'on' if traced else 'off'},"
                      f" rep {rep + 1}/{args.reps} ...", end=" ", flush=True)
                r = drain_once(url, args.runs, traced)
                out["reps"].append(r)
                print(f"{r['per_s']:.0f} tasks/s (load {r['load_1m']}, spans {r['spans']})",
                      flush=True)
    off = statistics.median(r["per_s"] for r in out["reps"] if not r["traced"])
    on = statistics.median(r["per_s"] for r in out["reps"] if r["traced"])
    out["median_tasks_per_s"] = {"off": off, "on": on, "ratio_on_off": on / off}
    print(f"\nW1 through one worker (concurrency {CONCURRENCY}), medians of {args.reps}:"
          f" off {off:.0f} tasks/s, on {on:.0f} tasks/s, on/off = {on / off:.3f}"
          f" ({os.cpu_count()} cores, load {load_avg()} now)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
