"""Benchmark the engine end to end through the real Python worker, next to pgbench.

Why: ``bench/run.py`` measures the SQL functions alone. What a user gets is that plus the Python
worker: claim over its one loop connection, hand tasks to handler threads, collect the results and
flush them with ``complete_tasks``, woken by NOTIFY through its listener thread. This measures
that path with no-op handlers, so what is left is the engine's own cost.

Setup: ONE worker process (``Worker``, concurrency 10, so one claim returns at most 10 tasks; other
settings at their defaults), started as a fresh interpreter (``python worker_e2e.py serve``) so
that its memory is the worker's own and not a fork of this process. It imports, builds its flows
and then waits; it only constructs and starts the ``Worker`` when this process says "go", after
the runs are loaded, so import and start-up time are not measured.

Workloads, each ``--reps`` times in a throwaway database (median reported):

* **single**: 2,000 single-step runs drained (tasks/s);
* **chain**: 200 three-step chains (steps/s);
* **diamond**: 100 diamonds 1 -> 10 -> 1 (steps/s);
* **hop**: 20-step chains run one at a time on an otherwise idle worker. Each hop handler returns
  ``time.time()`` at its start and just before it returns, as its output. Reported per hop
  (step n -> step n+1): *db->start*, from the database's ``tasks.completed_at`` of step n (taken
  inside ``complete_tasks``, just before its commit) to step n+1's handler start, and
  *return->start*, from step n's handler return to step n+1's handler start (adds the worker's
  own result hand-off and flush). Both clocks are CLOCK_REALTIME of the same machine.

For a drain the runs are all started first (100 per transaction), then ``workflow.maintain()``
refreshes the tables' statistics (autovacuum may be off; workers call it on their poll tick
anyway, this just does it before the clock starts). The throughput window is taken from the
database: first claim (``min(tasks.started_at)``) to last completion (``max(tasks.completed_at)``).
Claim and complete calls are counted from the same columns (one claim or one complete call
stamps all its tasks with one timestamp), which gives the mean batch size.

Also measured: the worker's CPU (``/proc/<pid>/stat``) and that of the PostgreSQL backends of
its connections (found by ``application_name``), so Python and Postgres CPU can be told apart;
its resident memory (VmRSS, and the peak VmHWM) at the end; the load average next to each number;
and pgbench's single-row UPDATE commits/s in the same run (one client, like the worker's single
loop connection; ``bench/run.py`` adds its multi-client figure when it runs this). ``--profile``
records the worker with py-spy during one single-step drain (``build/bench/worker.svg`` and the
top functions by self time).

Standalone: ``python bench/worker_e2e.py [--quick] [--reps N] [--profile]``; ``make bench`` runs it
after the SQL-only drive (``bench/run.py``) and prints both. Results go to stdout and
``build/bench/worker_e2e.json`` (standalone) or into ``build/bench/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

QUEUE = "e2e"
WIDTH = 10
HOP_STEPS = 20
APP_NAME = "sw_bench_e2e_worker"  # application_name of the worker's connections
CONCURRENCY = 10
PROFILE_RUNS = 10_000  # single-step runs of the profiled drain
SIZES = {"single": 2000, "chain": 200, "diamond": 100}
STEPS = {"single": 1, "chain": 3, "diamond": WIDTH + 2}
TARGETS = {  # the goals of the issue, for this 2-core machine
    "single": 8000.0,  # tasks/s
    "chain": 3200.0,  # steps/s
    "diamond": 3400.0,  # steps/s
    "hop_p50_ms": 1.5,
    "hop_p95_ms": 4.0,
    "rss_mb": 80.0,
}
HERE = Path(__file__).resolve().parent
OUT_DIR = HERE.parent / "build" / "bench"


# --- the flows (built in both processes: the parent registers them, the worker runs them) --------


def noop(_input: Any) -> None:
    """Do nothing: what is measured is the engine around the handler."""
    return


def stamp(_input: Any) -> dict[str, float]:
    """Hop handler: its start time and the time just before it returns (seconds since the epoch)."""
    start = time.time()
    return {"s": start, "e": time.time()}


def flow_shapes() -> dict[str, list[tuple[str, list[str]]]]:
    """Return each benchmark flow as ``slug -> [(step, depends_on), ...]``."""
    return {
        "e2e_single": [("only", [])],
        "e2e_chain": [("s1", []), ("s2", ["s1"]), ("s3", ["s2"])],
        "e2e_diamond": [
            ("a", []),
            *((f"b{i}", ["a"]) for i in range(1, WIDTH + 1)),
            ("join", [f"b{i}" for i in range(1, WIDTH + 1)]),
        ],
        "e2e_hop": [(f"h{i:02d}", [f"h{i - 1:02d}"] if i > 1 else []) for i in range(1, 21)],
    }


FLOW_OF = {"single": "e2e_single", "chain": "e2e_chain", "diamond": "e2e_diamond"}


def define_flows() -> list[Any]:
    """Build the flows as workflow definitions (list form), which also registers their handlers.

    Distributed steps on one queue: what a worker serves. The hop flow's handlers return time
    stamps, the others nothing.
    """
    from singularity_workflow import workflow_def

    defs = []
    for slug, steps in flow_shapes().items():
        fn = stamp if slug == "e2e_hop" else noop

        class Flow:
            __workflow_slug__ = slug
            __workflow_steps__: ClassVar[list[Any]] = [
                (name, fn, {"depends_on": deps, "execution": "distributed", "queue": QUEUE})
                for name, deps in steps
            ]

        defs.append(workflow_def(Flow))
    return defs


# --- the worker process ------------------------------------------------------------------------


def serve(url: str, concurrency: int) -> int:
    """Worker process: build the flows, wait for "go" on stdin, serve until SIGTERM or "stop".

    Prints one JSON line when ready (its pid) and one with the worker's stats at the end.
    Imports only what a worker needs, so its memory is a worker's memory.
    """
    from singularity_workflow import Worker

    define_flows()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"ready": os.getpid()}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    worker = Worker(url, queues=[QUEUE], concurrency=concurrency)
    worker.run_in_thread()
    print(json.dumps({"started": time.time()}), flush=True)

    def stop_on_input() -> None:
        sys.stdin.readline()  # "stop", or end of file if the parent went away
        stop.set()

    threading.Thread(target=stop_on_input, daemon=True).start()
    stop.wait()
    worker.stop()
    worker.join(30)
    st = worker.stats
    print(json.dumps({"stats": None if st is None else {
        "claimed": st.claimed, "completed": st.completed, "failed": st.failed,
        "stale": st.stale, "reconnects": st.reconnects, "errors": st.errors[:5]}}), flush=True)
    return 0


#: Extra server options for the worker's sessions only (``--worker-pgoptions``), for diagnosis:
#: e.g. ``-c synchronous_commit=off`` shows how much of a number is waiting for WAL flushes.
WORKER_PGOPTIONS: str | None = None


class WorkerProcess:
    """The parent's handle on one ``serve`` process: start, go, read /proc, stop."""

    def __init__(self, url: str, concurrency: int) -> None:
        env = dict(os.environ, PGAPPNAME=APP_NAME)
        if WORKER_PGOPTIONS:
            env["PGOPTIONS"] = WORKER_PGOPTIONS
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", "--database-url", url,
             "--concurrency", str(concurrency)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        ready = self._line()
        self.pid: int = ready["ready"]

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker process exited (code {self.proc.wait()})")
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def go(self) -> None:
        """Start the Worker; return once it is connected and listening."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self._line()

    def stop(self) -> dict[str, Any]:
        """Stop gracefully; return the worker's stats."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        out = self._line()
        self.proc.wait(30)
        return out.get("stats") or {}

    def kill(self) -> None:
        """Make sure the process is gone (after an error)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def memory_mb(self) -> dict[str, float]:
        """Return VmRSS and VmHWM (peak) of the worker process in MB."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(line.split()[1]) / 1024, 1)
        return out


# --- measuring -----------------------------------------------------------------------------------


def load_avg() -> float:
    """Return the 1-minute load average (other work on the machine skews every number)."""
    return round(os.getloadavg()[0], 2)


def one(conn: Any, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
    """Run a query that returns exactly one row and return it."""
    row: tuple[Any, ...] | None = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def backend_pids(conn: Any) -> list[int]:
    """Return the pids of the worker's PostgreSQL backends (by their application_name)."""
    return [r[0] for r in conn.execute(
        "select pid from pg_stat_activity where application_name = %s", [APP_NAME]).fetchall()]


def reset(conn: Any) -> None:
    """Empty the run, task and queue tables so every repetition starts from the same state."""
    from psycopg import sql

    conn.execute("truncate workflow.runs, workflow.step_states, workflow.tasks cascade")
    conn.execute(sql.SQL("truncate pgmq.{}, pgmq.{}").format(
        sql.Identifier(f"q_{QUEUE}"), sql.Identifier(f"a_{QUEUE}")))
    conn.execute("vacuum analyze workflow.runs, workflow.step_states, workflow.tasks")


def wait_runs_done(conn: Any, runs: int, timeout: float = 300.0) -> None:
    """Poll (every 50 ms: one cheap count) until ``runs`` runs completed; raise on failure."""
    deadline = time.monotonic() + timeout
    while True:
        done, failed = one(
            conn, "select count(*) filter (where status = 'completed'),"
            " count(*) filter (where status = 'failed') from workflow.runs")
        if failed:
            raise RuntimeError(f"{failed} run(s) failed")
        if done >= runs:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done}/{runs} runs completed after {timeout} s")
        time.sleep(0.05)


class WaitSampler:
    """Sample what the worker's loop connection is doing, every 10 ms, from pg_stat_activity.

    The loop backend (the one running claim_tasks / complete_tasks) is either idle (the worker
    is busy in Python, or the bytes are on the wire), running on CPU (active, no wait event), or
    waiting: IO:WALSync is the commit's WAL flush, Lock:object the lock every NOTIFYing commit
    takes (one at a time, server-wide), and so on. Shares of the samples tell what bounds the
    throughput. Costs one small query per sample on the parent's own connection.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.01):
                for state, wtype, wevent in conn.execute(
                    "select state, wait_event_type, wait_event from pg_stat_activity"
                    " where application_name = %s and query ~ 'workflow\\.(claim|complete)_tasks'",
                    [APP_NAME],
                ).fetchall():
                    key = ("idle: in the worker or on the wire" if state != "active"
                           else f"{wtype}:{wevent}" if wtype else "CPU (running SQL)")
                    self.counts[key] = self.counts.get(key, 0) + 1

    def start(self) -> WaitSampler:
        """Start sampling in a thread."""
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        """Stop; return each state's share of the samples in percent, largest first."""
        self._stop.set()
        self._thread.join()
        total = sum(self.counts.values()) or 1
        return {k: round(100 * v / total, 1)
                for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])}


def drain_once(url: str, workload: str, profile_to: Path | None = None,
               runs: int | None = None) -> dict[str, Any]:
    """Load one workload's runs (default: its size), then let a fresh worker drain them; measure.

    ``profile_to``: record the worker with py-spy during the drain (raw stacks there, SVG beside).
    """
    import psycopg
    from run import cpu_seconds  # bench/run.py

    runs = runs or SIZES[workload]
    flow = FLOW_OF[workload]
    with psycopg.connect(url, autocommit=True) as conn:
        reset(conn)
        for first in range(0, runs, 100):
            conn.execute(
                "select count(workflow.start_flow(%s, jsonb_build_object('i', g)))"
                " from generate_series(%s::int, %s::int) as g",
                [flow, first + 1, min(runs, first + 100)])
        analyzed = one(conn, "select workflow.maintain()")[0]["analyzed"]
        worker = WorkerProcess(url, CONCURRENCY)
        spies: list[subprocess.Popen[str]] = []
        try:
            load = load_avg()
            py0 = cpu_seconds(worker.pid)
            t0 = time.monotonic()
            worker.go()
            pids = backend_pids(conn)
            pg0 = {p: cpu_seconds(p) for p in pids}
            if profile_to is not None:
                spies = start_py_spy(worker.pid, profile_to)
            sampler = WaitSampler(url).start()
            wait_runs_done(conn, runs)
            wall = time.monotonic() - t0
            waits = sampler.stop()
            # Re-read the backends: the client's own connection opens later (first maintain).
            pids = backend_pids(conn)
            pg_cpu = sum(cpu_seconds(p) - pg0.get(p, 0.0) for p in pids)
            py_cpu = cpu_seconds(worker.pid) - py0
            mem = worker.memory_mb()
            for spy in spies:  # py-spy writes its output when interrupted
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(60)
            stats = worker.stop()
        finally:
            worker.kill()
            for spy in spies:
                if spy.poll() is None:
                    spy.kill()
        row = one(
            conn, "select count(*), extract(epoch from max(completed_at) - min(started_at)),"
            " count(distinct started_at), count(distinct completed_at),"
            " count(*) filter (where attempts_count > 1)"
            " from workflow.tasks where status = 'completed'")
    tasks, window, claims, completes, retried = row
    expected = runs * STEPS[workload]
    if tasks != expected:
        raise RuntimeError(f"{workload}: {tasks}/{expected} tasks completed")
    window = float(window)
    return {
        "runs": runs, "tasks": tasks, "window_s": round(window, 3),
        "per_s": round(tasks / window, 1), "wall_s": round(wall, 3),
        "claim_calls": claims, "complete_calls": completes,
        "tasks_per_claim": round(tasks / claims, 2),
        "tasks_per_complete": round(tasks / completes, 2),
        "retried_tasks": retried,
        "worker_cpu_s": round(py_cpu, 2), "backends_cpu_s": round(pg_cpu, 2),
        "worker_cpu_pct_of_window": round(100 * py_cpu / window, 1),
        "backends_cpu_pct_of_window": round(100 * pg_cpu / window, 1),
        "rss_mb": mem.get("VmRSS"), "rss_peak_mb": mem.get("VmHWM"),
        "load_1m": load, "analyzed_before": analyzed, "worker_stats": stats,
        "loop_backend_states_pct": waits,
    }


def hop_once(url: str, chains: int, *, keep_hops: bool = False) -> dict[str, Any]:
    """Run ``chains`` 20-step chains one after the other on an idle worker; return hop times.

    ``keep_hops``: also return every db->start hop (``db_hops_ms``), to pool them over reps.
    """
    import psycopg
    from psycopg import sql
    from psycopg.types.json import Jsonb
    from run import cpu_seconds

    with psycopg.connect(url, autocommit=True) as conn:
        reset(conn)
        worker = WorkerProcess(url, CONCURRENCY)
        try:
            load = load_avg()
            worker.go()
            py0 = cpu_seconds(worker.pid)
            run_ids = []
            with psycopg.connect(url, autocommit=True) as listen:
                for i in range(chains):
                    time.sleep(0.2)  # let the worker go idle (waiting on its wake-up event)
                    run_id = one(conn, "select gen_random_uuid()")[0]
                    listen.execute(sql.SQL("listen {}").format(
                        sql.Identifier(f"workflow_run_{run_id}")))
                    conn.execute("select workflow.start_flow('e2e_hop', %s, %s)",
                                 [Jsonb({"i": i}), run_id])
                    # The run's channel carries its events too; wait for the one that ends it.
                    ended = False
                    for n in listen.notifies(timeout=60):
                        if json.loads(n.payload).get("status") in ("completed", "failed"):
                            ended = True
                            break
                    if not ended:
                        raise RuntimeError(f"hop chain {run_id} did not end within 60 s")
                    run_ids.append(run_id)
            py_cpu = cpu_seconds(worker.pid) - py0
            mem = worker.memory_mb()
            worker.stop()
        finally:
            worker.kill()
        rows = conn.execute(
            "select t.run_id, t.step_slug, extract(epoch from t.started_at),"
            " extract(epoch from t.completed_at),"
            " (t.output->>'s')::float8, (t.output->>'e')::float8"
            " from workflow.tasks t where t.status = 'completed'"
            " order by t.run_id, t.step_slug").fetchall()
    by_run: dict[Any, list[tuple[float, float, float, float]]] = {}
    for run_id, _step, claimed_at, done_at, start, end in rows:
        by_run.setdefault(run_id, []).append((float(claimed_at), float(done_at), start, end))
    db_hops, py_hops, to_claim, claim_to_start = [], [], [], []
    for steps in by_run.values():
        if len(steps) != HOP_STEPS:
            raise RuntimeError(f"a hop chain completed {len(steps)}/{HOP_STEPS} steps")
        for (_c, done_at, _s, end), (claimed_at, _d, nxt_start, _e) in pairwise(steps):
            db_hops.append((nxt_start - done_at) * 1000)
            py_hops.append((nxt_start - end) * 1000)
            # The two halves: complete_tasks' commit, NOTIFY and the worker's wake-up up to
            # the start of the claim_tasks call (its `now`); then the claim itself (statement,
            # commit, reply) and the hand-off to a handler thread.
            to_claim.append((claimed_at - done_at) * 1000)
            claim_to_start.append((nxt_start - claimed_at) * 1000)
    return {
        "chains": chains, "hops": len(db_hops),
        "db_to_start_ms": summary(db_hops), "return_to_start_ms": summary(py_hops),
        "completed_to_claim_ms": summary(to_claim), "claim_to_start_ms": summary(claim_to_start),
        "worker_cpu_s": round(py_cpu, 2), "rss_mb": mem.get("VmRSS"),
        "rss_peak_mb": mem.get("VmHWM"), "load_1m": load,
        **({"db_hops_ms": db_hops} if keep_hops else {}),
    }


def summary(ms: Sequence[float]) -> dict[str, float]:
    """Return p50, p95 and max of a list of milliseconds (nearest rank)."""
    ordered = sorted(ms)

    def pct(q: float) -> float:
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return round(ordered[rank], 3)

    return {"p50": pct(50), "p95": pct(95), "max": round(ordered[-1], 3)}


# --- profile ---------------------------------------------------------------------------------


def py_spy() -> str | None:
    """Return the py-spy executable next to this Python, or on PATH, or None."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    from shutil import which

    return which("py-spy")


def start_py_spy(pid: int, out: Path) -> list[subprocess.Popen[str]]:
    """Start two ``py-spy record`` samplers on ``pid``: raw collapsed stacks and a flame graph.

    Two processes because py-spy writes one format per recording and cannot convert afterwards;
    ``--nonblocking`` means neither stops the worker to read it (each costs some CPU of its own
    on this machine, though). The raw stacks are sampled with ``--gil``: only the thread holding
    the GIL, i.e. where the worker's Python CPU goes (py-spy's idle detection does not see
    psycopg's and the queues' waits as idle). The flame graph shows every thread that is not
    idle, waits included, for the whole picture.
    """
    exe = py_spy()
    if exe is None:
        return []
    out.parent.mkdir(parents=True, exist_ok=True)
    common = [exe, "record", "--pid", str(pid), "--rate", "250", "--threads", "--nonblocking"]
    return [
        subprocess.Popen([*common, "--gil", "--format", "raw", "--output", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True),
        subprocess.Popen([*common, "--format", "flamegraph",
                          "--output", str(out.with_suffix(".svg"))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True),
    ]


def read_profile(raw: Path) -> dict[str, Any]:
    """Summarise collapsed stacks: samples per thread kind and the top functions by self time.

    A stack's first frame is the thread (``--threads``); its last frame is where it was. Frames
    are ``function (file:line)``; they are grouped by function and file.
    """
    per_thread: dict[str, int] = {}
    self_time: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        thread = frames[0]
        kind = ("loop" if "sw-worker" in thread else "listener" if "sw-listen" in thread
                else "lease" if "sw-lease" in thread else "handler" if "sw-handler" in thread
                else "main" if "MainThread" in thread else thread)
        per_thread[kind] = per_thread.get(kind, 0) + count
        leaf = frames[-1]
        name = leaf.split(" (")[0]
        where = leaf.split(" (", 1)[1].split(":")[0] if " (" in leaf else ""
        key = f"{name} ({Path(where).name})"
        self_time[key] = self_time.get(key, 0) + count
    top = sorted(self_time.items(), key=lambda kv: -kv[1])[:15]
    return {
        "samples": total,
        "by_thread": {k: round(100 * v / total, 1) for k, v in
                      sorted(per_thread.items(), key=lambda kv: -kv[1])} if total else {},
        "top_self": [{"function": k, "pct": round(100 * v / total, 1)} for k, v in top]
        if total else [],
    }


# --- the whole section ---------------------------------------------------------------------------


def median_of(reps: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Return the repetition with the median ``key``, with every repetition's value beside it."""
    ordered = sorted(reps, key=lambda r: r[key])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["all_reps"] = [r[key] for r in reps]
    chosen["loads"] = [r["load_1m"] for r in reps]
    values = [r[key] for r in reps]
    chosen["spread_pct"] = (round(100 * (max(values) - min(values)) / statistics.median(values), 1)
                            if len(values) > 1 else 0.0)
    return chosen


def run_section(admin_url: str, *, reps: int, chains: int, pgbench_seconds: int,
                profile: bool) -> dict[str, Any]:
    """Measure everything in a throwaway database; return the section of the report."""
    import psycopg
    import run as sql_bench
    from psycopg.conninfo import make_conninfo

    from singularity_workflow import Client, install

    local = sql_bench.server_is_local(admin_url)
    if not local:
        raise SystemExit("worker_e2e needs the server on this machine (it reads /proc)")
    out: dict[str, Any] = {"settings": {
        "worker_pgoptions": WORKER_PGOPTIONS, "concurrency": CONCURRENCY, "reps": reps,
        "sizes": SIZES, "hop_chains": chains, "hop_steps": HOP_STEPS, "poll_interval_s": 5.0,
        "maintain_before_drain": True}}
    print(f"worker e2e: pgbench single-row UPDATE, -c 1 -T {pgbench_seconds} ...", flush=True)
    out["pgbench_1_client"] = sql_bench.run_pgbench(admin_url, 1, pgbench_seconds, local)
    out["pgbench_1_client"]["load_1m"] = load_avg()
    print(f"  {out['pgbench_1_client']['tps']:.0f} commits/s", flush=True)
    with sql_bench.throwaway_database(admin_url, "sw_bench_e2e") as db:
        url = make_conninfo(admin_url, dbname=db)
        install(url)
        with Client(url) as client:
            for d in define_flows():
                client.register_flow(d)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select workflow.maintain()")
        out["workloads"] = {}
        for workload, runs in SIZES.items():
            reps_out = []
            for rep in range(reps):
                print(f"worker e2e: {workload} ({runs} runs), rep {rep + 1}/{reps} ...",
                      end=" ", flush=True)
                r = drain_once(url, workload)
                reps_out.append(r)
                print(f"{r['per_s']:.0f} steps/s (load {r['load_1m']})", flush=True)
            out["workloads"][workload] = median_of(reps_out, "per_s")
        hops = []
        for rep in range(reps):
            print(f"worker e2e: hop latency, {chains} x {HOP_STEPS}-step chains, rep {rep + 1}/"
                  f"{reps} ...", end=" ", flush=True)
            h = hop_once(url, chains)
            h["p50"] = h["db_to_start_ms"]["p50"]
            hops.append(h)
            print(f"p50 {h['db_to_start_ms']['p50']:.2f} ms, p95 {h['db_to_start_ms']['p95']:.2f}"
                  f" ms (load {h['load_1m']})", flush=True)
        out["hop"] = median_of(hops, "p50")
        out["hop"]["p95_all_reps"] = [h["db_to_start_ms"]["p95"] for h in hops]
        if profile:
            raw = OUT_DIR / "worker.txt"  # and worker.svg beside it
            print("worker e2e: py-spy profile of a single-step drain ...", flush=True)
            if py_spy() is None:
                out["profile"] = {"error": "py-spy not installed (pip install py-spy)"}
            else:
                # Longer than the measured drain, so that py-spy's start-up is a small part.
                r = drain_once(url, "single", profile_to=raw, runs=PROFILE_RUNS)
                out["profile"] = {"drain": r, **(read_profile(raw) if raw.exists()
                                                 else {"error": "py-spy wrote nothing"})}
    return out


def print_section(sec: dict[str, Any], pgbench_multi: dict[str, Any] | None = None) -> None:
    """Print the section's table, the targets and the profile summary."""
    s = sec["settings"]
    print(f"\n== through the Python worker: 1 worker process, concurrency {s['concurrency']}, "
          f"no-op handlers, median of {s['reps']} ==")
    if s.get("worker_pgoptions"):
        print(f"NOTE: the worker's sessions ran with PGOPTIONS={s['worker_pgoptions']!r}")
    print("steps/s over first claim -> last completion (database time stamps); "
          "workflow.maintain() ran after loading; py/pg CPU% = worker process / its backends,"
          " in % of one core over that window")
    print(f"{'workload':<9}{'runs':>6}{'steps':>7}{'steps/s':>9}{'target':>8}{'reps':>20}"
          f"{'spread':>8}{'per claim':>10}{'py CPU%':>9}{'pg CPU%':>9}{'RSS MB':>8}{'load':>14}")
    for name, w in sec["workloads"].items():
        reps = "/".join(f"{v:.0f}" for v in w["all_reps"])
        loads = "/".join(f"{v:.1f}" for v in w["loads"])
        print(f"{name:<9}{w['runs']:>6}{w['tasks']:>7}{w['per_s']:>9.0f}{TARGETS[name]:>8.0f}"
              f"{reps:>20}{w['spread_pct']:>7.0f}%{w['tasks_per_claim']:>10.1f}"
              f"{w['worker_cpu_pct_of_window']:>9.0f}{w['backends_cpu_pct_of_window']:>9.0f}"
              f"{w['rss_mb']:>8.1f}{loads:>14}")
    h = sec["hop"]
    print(f"hop (20-step chain, idle worker, {h['hops']} hops per rep): db completed_at -> next "
          f"handler start p50 {h['db_to_start_ms']['p50']:.2f} ms, p95 "
          f"{h['db_to_start_ms']['p95']:.2f} ms, max {h['db_to_start_ms']['max']:.1f} ms; handler "
          f"return -> next start p50 {h['return_to_start_ms']['p50']:.2f} ms, p95 "
          f"{h['return_to_start_ms']['p95']:.2f} ms")
    print(f"    split (p50/p95 ms): complete's commit + NOTIFY + wake-up -> claim starts "
          f"{h['completed_to_claim_ms']['p50']:.2f}/{h['completed_to_claim_ms']['p95']:.2f}; "
          f"claim (statement, commit, reply) + hand-off -> handler starts "
          f"{h['claim_to_start_ms']['p50']:.2f}/{h['claim_to_start_ms']['p95']:.2f}")
    print(f"    p50 of each rep {h['all_reps']} ms, p95 of each rep {h['p95_all_reps']} ms, "
          f"load {h['loads']}")
    for name, w in sec["workloads"].items():
        top = list(w["loop_backend_states_pct"].items())[:5]
        states = ", ".join(f"{k} {v:.0f}%" for k, v in top)
        print(f"  {name}: the loop's backend was: {states}")
    pg1 = sec["pgbench_1_client"]
    line = f"pgbench single-row UPDATE: {pg1['tps']:.0f} commits/s with 1 client"
    if pgbench_multi is not None:
        line += f", {pgbench_multi['tps']:.0f} with {pgbench_multi['clients']} clients"
    print(line + " (same run)")
    rss = max(w["rss_mb"] for w in [*sec["workloads"].values(), h])
    checks = [
        *((f"{n} >= {TARGETS[n]:.0f}/s", w["per_s"] >= TARGETS[n], f"{w['per_s']:.0f}")
          for n, w in sec["workloads"].items()),
        ("hop p50 <= 1.5 ms", h["db_to_start_ms"]["p50"] <= TARGETS["hop_p50_ms"],
         f"{h['db_to_start_ms']['p50']:.2f}"),
        ("hop p95 <= 4 ms", h["db_to_start_ms"]["p95"] <= TARGETS["hop_p95_ms"],
         f"{h['db_to_start_ms']['p95']:.2f}"),
        ("worker RSS < 80 MB", rss < TARGETS["rss_mb"], f"{rss:.1f}"),
    ]
    for label, ok, got in checks:
        print(f"target {label}: {'meets' if ok else 'MISSES'} ({got})")
    prof = sec.get("profile")
    if prof:
        if "error" in prof:
            print(f"profile: {prof['error']}")
        else:
            d = prof["drain"]
            print(f"\n== worker profile (py-spy, single-step drain at {d['per_s']:.0f} tasks/s; "
                  f"worker CPU {d['worker_cpu_s']} s, its backends {d['backends_cpu_s']} s over "
                  f"{d['window_s']} s) ==")
            print(f"{prof['samples']} samples of the thread holding the GIL (py-spy --gil, "
                  "250 Hz), by thread: " + ", ".join(f"{k} {v}%" for k, v in
                                                     prof["by_thread"].items()))
            print("top functions by self time (% of those samples):")
            for f in prof["top_self"][:12]:
                print(f"  {f['pct']:>5.1f}%  {f['function']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone: run the section, print it, write ``build/bench/worker_e2e.json``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("command", nargs="?", default="bench", choices=["bench", "serve"],
                   help=argparse.SUPPRESS)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                   or "postgresql://root@127.0.0.1:5432/postgres")
    p.add_argument("--concurrency", type=int, default=CONCURRENCY, help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="one rep, 3 hop chains, 5 s pgbench")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    p.add_argument("--hop-chains", type=int, default=None, help="20-step chains per rep (10)")
    p.add_argument("--profile", action="store_true", help="py-spy the worker in one drain")
    p.add_argument("--worker-pgoptions", default=None,
                   help="PGOPTIONS for the worker's sessions only (diagnosis, e.g."
                   " '-c synchronous_commit=off'; the report says so)")
    p.add_argument("--output", type=Path, default=OUT_DIR / "worker_e2e.json")
    args = p.parse_args(argv)
    global WORKER_PGOPTIONS
    WORKER_PGOPTIONS = args.worker_pgoptions
    if args.command == "serve":
        return serve(args.database_url, args.concurrency)
    sec = run_section(
        args.database_url, reps=args.reps or (1 if args.quick else 3),
        chains=args.hop_chains or (3 if args.quick else 10),
        pgbench_seconds=5 if args.quick else 10, profile=args.profile)
    print_section(sec)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(sec, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
