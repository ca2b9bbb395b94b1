"""Benchmark the SQL core with no handler work, next to pgbench on the same server.

Why: the engine's throughput ceiling is set by its SQL functions, not by Python. The product's goal
is that draining tasks through ``claim_tasks`` + ``complete_tasks`` reaches at least the commits/s
pgbench gets from the same server for a single-row UPDATE with the same number of clients: batching
(one claim and one complete transaction per B tasks) should buy back the extra rows each task
touches. This script measures both in one go, so the comparison is made under the same load.

What it does, in throwaway databases it creates and drops:

1. pgbench: ``pgbench -i -s 1``, then a one-row UPDATE script with ``-c CLIENTS -j 2 -T SECONDS``.
2. Three workloads, each ``--reps`` times (the median is reported): single-step runs, 3-step
   chains, and 1 -> 10 -> 1 diamonds. CLIENTS processes (not threads: Python threads would share
   one GIL), each with its own connection, first start the runs (``start_flow`` 100 per
   transaction; the start rate is reported on its own), then drain them: loop
   ``claim_tasks(qty=B)`` and one ``complete_tasks`` of the B tasks with a constant output.
   tasks/s = completed tasks / wall time of the drain. Claim and complete latencies (p50/p95)
   and the CPU used by the PostgreSQL backends and by the Python processes are reported too.
3. A profile of the single-step case: per-function time (``track_functions``) over a whole drain,
   and per-statement time (``auto_explain`` with nested statements, ANALYZE and BUFFERS, read back
   as client notices) of a few claim and complete batches.
4. The same workloads end to end through the Python worker (``bench/worker_e2e.py``: one worker
   process, concurrency 10, no-op handlers), the hop latency of a 20-step chain, the worker's
   memory and CPU, next to pgbench with one client; ``--no-worker`` skips it.
5. Flow control (``bench/flow_control.py``): the claim's cost with no limit, a per-key
   concurrency limit over 1,000 keys and a global rate limit, side by side from one connection;
   and fairness on an ordered queue (one key with 10,000 ready tasks, nine with 10: in which claim
   the small keys' tasks start); ``--no-flow-control`` skips it.
6. Schedules (``bench/schedules.py``): claims/s of an idle worker's claim loop (empty queue, the
   sweep included) with 0 and with 1,000 schedules defined, none due, side by side, medians of 3,
   and their ratio; ``--no-schedules`` skips it.
7. Peers (``bench/peers.py``): PgQueuer, installed from the package index into its own venv under
   ``build/``, and the engine side by side in a private cluster: W1 (2,000 one-step jobs), W2
   (200 three-step chains), W3 (100 diamonds), W4 (hop latency of a 20-step chain), one worker
   process each, concurrency 10, as ratios; WAL bytes, rows written and CPU (PostgreSQL and
   Python) per W1 task for both. Skipped with a message when PgQueuer cannot be installed;
   ``--no-peers`` skips it.
8. Clients and versions (``bench/clients.py``, ``bench/versions.py``, each in a process and a
   throwaway database of its own): W1-W4 through ``Client`` and ``AsyncClient`` side by side,
   and one flow version against version 20 with retired versions and pinned runs (W1, W4 and
   the no-op ``register_flow``); ``--no-clients`` / ``--no-versions`` skip them.

Results: a table on stdout, and ``build/bench/latest.json`` with the machine and server settings.
``--quick`` is a ~30-second version for a smoke test (about a minute with the worker section). The
server comes from ``--database-url`` or ``DATABASE_URL`` (an admin connection that may create
databases).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from singularity_workflow import install

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "build" / "bench"
DEFAULT_URL = "postgresql://root@127.0.0.1:5432/postgres"
QUEUE = "bench"
START_BATCH = 100  # start_flow calls per transaction

WIDTH = 10
FLOWS: dict[str, dict[str, Any]] = {
    "single": {"slug": "bench_single", "steps": [{"slug": "only", "queue": QUEUE, "execution": "distributed"}]},
    "chain": {
        "slug": "bench_chain",
        "steps": [
            {"slug": "s1", "queue": QUEUE, "execution": "distributed"},
            {"slug": "s2", "depends_on": ["s1"], "queue": QUEUE, "execution": "distributed"},
            {"slug": "s3", "depends_on": ["s2"], "queue": QUEUE, "execution": "distributed"},
        ],
    },
    "diamond": {
        "slug": "bench_diamond",
        "steps": [
            {"slug": "a", "queue": QUEUE, "execution": "distributed"},
            *({"slug": f"b{i}", "depends_on": ["a"], "queue": QUEUE, "execution": "distributed"} for i in range(1, WIDTH + 1)),
            {"slug": "join", "depends_on": [f"b{i}" for i in range(1, WIDTH + 1)], "queue": QUEUE, "execution": "distributed"},
        ],
    },
}
STEPS = {"single": 1, "chain": 3, "diamond": WIDTH + 2}
UPDATE_SCRIPT = (
    "\\set aid random(1, 100000 * :scale)\n"
    "update pgbench_accounts set abalance = abalance + 1 where aid = :aid;\n"
)


# --- databases and server facts -----------------------------------------------------------------


@contextmanager
def throwaway_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Create database ``<prefix>_<random>``, yield its name, and drop it (forcefully) after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def server_facts(url: str) -> dict[str, Any]:
    """Return the server version and the settings that bound commit throughput."""
    names = [
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "wal_level",
        "full_page_writes",
        "commit_delay",
        "max_connections",
        "wal_sync_method",
        "checkpoint_timeout",
        "max_wal_size",
        "autovacuum",
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        facts: dict[str, Any] = {"server_version": conn.execute("select version()").fetchone()[0]}  # type: ignore[index]
        for name in names:
            facts[name] = conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()[
                0
            ]  # type: ignore[index]
    return facts


def machine_facts() -> dict[str, Any]:
    """Return what the numbers depend on: cores, memory, load, Python and psycopg versions."""
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "commit": commit,
    }


# --- CPU accounting from /proc (only meaningful when the server runs on this machine) -----------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds used so far by process ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def postgres_pids() -> list[int]:
    """Return the pids of every process on this machine named ``postgres``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def all_postgres_cpu() -> dict[int, float]:
    """Return CPU seconds by pid for every postgres process (all databases, all backends)."""
    return {pid: cpu_seconds(pid) for pid in postgres_pids()}


class CpuSampler:
    """Track the CPU of every postgres process over an interval, including ones that exit.

    A backend's counters vanish with it (pgbench's clients disconnect before we could read them
    afterwards), so a thread re-reads /proc every 0.1 s and keeps each process's last value.
    Processes that existed at the start count from their value then; new ones from zero.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        self.last.update({pid: v for pid, v in all_postgres_cpu().items() if v})

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def start(self) -> CpuSampler:
        """Take the baseline and start sampling."""
        if self.enabled:
            self.base = all_postgres_cpu()
            self.last = dict(self.base)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and stop."""
        if self.enabled:
            self._stop.set()
            self._thread.join()
            self._sample()

    def seconds(self, pids: set[int] | None = None) -> float | None:
        """Return the CPU seconds of ``pids`` (default: every postgres process) in the interval."""
        if not self.enabled:
            return None
        chosen = self.last if pids is None else {p: v for p, v in self.last.items() if p in pids}
        return round(sum(v - self.base.get(p, 0.0) for p, v in chosen.items()), 2)


def server_is_local(url: str) -> bool:
    """Tell whether the server runs here, so that /proc sees its processes."""
    host = conninfo_to_dict(url).get("host") or ""
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


# --- pgbench -----------------------------------------------------------------------------------


def pgbench_env(url: str) -> dict[str, str]:
    """Map a connection string to libpq environment variables for pgbench."""
    params = conninfo_to_dict(url)
    env = dict(os.environ)
    for key, var in (
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("password", "PGPASSWORD"),
    ):
        if params.get(key):
            env[var] = str(params[key])
    return env


def run_pgbench(admin_url: str, clients: int, seconds: int, local: bool) -> dict[str, Any]:
    """Run the single-row UPDATE pgbench in a throwaway database; return tps and CPU use."""
    env = pgbench_env(admin_url)
    with (
        throwaway_database(admin_url, "sw_bench_pgbench") as db,
        tempfile.NamedTemporaryFile("w", suffix=".sql") as script,
    ):
        script.write(UPDATE_SCRIPT)
        script.flush()
        subprocess.run(
            ["pgbench", "-i", "-q", "-s", "1", db],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        cpu = CpuSampler(local).start()
        t0 = time.monotonic()
        done = subprocess.run(
            [
                "pgbench",
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                "-f",
                script.name,
                db,
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - t0
        cpu.stop()
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if not match:
        raise RuntimeError(f"cannot read tps from pgbench output:\n{done.stdout}")
    lat = re.search(r"latency average = ([0-9.]+) ms", done.stdout)
    return {
        "tps": float(match.group(1)),
        "latency_avg_ms": float(lat.group(1)) if lat else None,
        "clients": clients,
        "seconds": seconds,
        "postgres_cpu_s": cpu.seconds(),
        "wall_s": round(wall, 2),
    }


# --- the SQL-only drive ------------------------------------------------------------------------


def worker(
    url: str,
    flow: str,
    runs: int,
    batch: int,
    total_tasks: int,
    counter: Any,
    barriers: Sequence[Any],
    results: Any,
    track_functions: bool,
) -> None:
    """One client process: start its share of runs, then claim and complete until all are done.

    Barriers: [0] everyone connected; [1] starts done (the parent then ANALYZEs); [2] go drain;
    [3] the parent has read the backends' CPU (so they stay connected until then).
    ``counter`` (shared) counts accepted completions over all clients, so each knows when the
    last task of the workload is done without asking the database.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        start_sql = (
            "select count(workflow.start_flow(%s, jsonb_build_object('i', g)))"
            " from generate_series(1, %s) as g"
        )
        claim_sql = "select task_id, attempt from workflow.claim_tasks(%s, %s)"
        complete_sql = (
            "select count(*) filter (where accepted)"
            " from workflow.complete_tasks(%s::bigint[], %s::int[], %s::jsonb[])"
        )
        output = Jsonb({"ok": True})

        barriers[0].wait()
        left = runs
        while left > 0:
            n = min(START_BATCH, left)
            conn.execute(start_sql, [flow, n])
            left -= n
        barriers[1].wait()
        if track_functions:  # only now, so that the profile counts the drain, not the starts
            conn.execute("set track_functions = 'pl'")
        barriers[2].wait()

        cpu0 = time.process_time()
        claims: list[float] = []
        completes: list[float] = []
        empty_claims = 0
        completed = 0
        while counter.value < total_tasks:
            t0 = time.perf_counter()
            rows = conn.execute(claim_sql, [QUEUE, batch]).fetchall()
            t1 = time.perf_counter()
            if not rows:
                empty_claims += 1
                time.sleep(0.001)
                continue
            claims.append(t1 - t0)
            ids = [r[0] for r in rows]
            attempts = [r[1] for r in rows]
            t0 = time.perf_counter()
            row = conn.execute(complete_sql, [ids, attempts, [output] * len(ids)]).fetchone()
            completes.append(time.perf_counter() - t0)
            accepted = int(row[0]) if row else 0
            completed += accepted
            with counter.get_lock():
                counter.value += accepted
        results.put(
            {
                "end": time.monotonic(),
                "backend_pid": pid,
                "python_cpu_s": time.process_time() - cpu0,
                "claims": claims,
                "completes": completes,
                "empty_claims": empty_claims,
                "completed": completed,
            }
        )
        barriers[3].wait()


def reset_tables(url: str) -> None:
    """Empty the run, task and queue tables so every repetition starts from the same state."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate workflow.runs, workflow.step_states, workflow.tasks cascade")
        conn.execute(
            sql.SQL("truncate pgmq.{}, pgmq.{}").format(
                sql.Identifier(f"q_{QUEUE}"), sql.Identifier(f"a_{QUEUE}")
            )
        )
        conn.execute("vacuum analyze workflow.runs, workflow.step_states, workflow.tasks")


def analyze_until(url: str, stop: threading.Event, every: float = 2.0) -> None:
    """ANALYZE the run, step and task tables every ``every`` seconds until ``stop`` is set."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(every):
            conn.execute("analyze workflow.runs, workflow.step_states, workflow.tasks")


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0..100) of ``values`` by nearest rank, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank] * 1000


def drive_once(
    url: str,
    workload: str,
    runs: int,
    clients: int,
    batch: int,
    local: bool,
    track_functions: bool = False,
) -> dict[str, Any]:
    """Start ``runs`` runs of one workload from ``clients`` processes and drain them; measure."""
    reset_tables(url)
    ctx = mp.get_context("fork")
    total_tasks = runs * STEPS[workload]
    counter = ctx.Value("q", 0)
    barriers = [ctx.Barrier(clients + 1) for _ in range(4)]
    results = ctx.Queue()
    shares = [runs // clients + (1 if i < runs % clients else 0) for i in range(clients)]
    procs = [
        ctx.Process(
            target=worker,
            args=(
                url,
                FLOWS[workload]["slug"],
                shares[i],
                batch,
                total_tasks,
                counter,
                barriers,
                results,
                track_functions,
            ),
        )
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    try:
        barriers[0].wait(timeout=60)
        t_start = time.monotonic()
        # While runs are started, keep the tables' statistics fresh, as a well-tuned autovacuum
        # would: with the statistics of the empty tables of a fresh database, start_flow's
        # statements scan whole tables and the start phase grows quadratically (measured:
        # 100 starts take 98 ms at 100 tasks, 786 ms at 4,000; 75 ms at any size after ANALYZE).
        starting = threading.Event()
        analyzer = threading.Thread(target=analyze_until, args=(url, starting), daemon=True)
        analyzer.start()
        try:
            barriers[1].wait(timeout=600)
        finally:
            starting.set()
            analyzer.join()
        start_wall = time.monotonic() - t_start
        # Fresh statistics, as a long-running system would have; without them the first plans
        # are made for empty tables.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("analyze workflow.runs, workflow.step_states, workflow.tasks")
            conn.execute(sql.SQL("analyze pgmq.{}").format(sql.Identifier(f"q_{QUEUE}")))
        cpu = CpuSampler(local).start()
        barriers[2].wait(timeout=60)
        t_drain = time.monotonic()
        outs = [results.get(timeout=900) for _ in procs]
        cpu.stop()
        barriers[3].wait(timeout=60)
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    drain_wall = max(o["end"] for o in outs) - t_drain
    completed = sum(o["completed"] for o in outs)
    ours = {o["backend_pid"] for o in outs}
    claims = [x for o in outs for x in o["claims"]]
    completes = [x for o in outs for x in o["completes"]]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) filter (where status = 'completed'), count(*) from workflow.runs"
        ).fetchone()
    assert row is not None
    if completed != total_tasks or row[0] != runs or row[1] != runs:
        raise RuntimeError(
            f"{workload}: {completed}/{total_tasks} tasks completed, {row[0]}/{runs} runs completed"
        )
    return {
        "runs": runs,
        "tasks": completed,
        "start_wall_s": round(start_wall, 3),
        "starts_per_s": round(runs / start_wall, 1),
        "drain_wall_s": round(drain_wall, 3),
        "tasks_per_s": round(completed / drain_wall, 1),
        "claim_ms_p50": round(percentile(claims, 50), 2),
        "claim_ms_p95": round(percentile(claims, 95), 2),
        "complete_ms_p50": round(percentile(completes, 50), 2),
        "complete_ms_p95": round(percentile(completes, 95), 2),
        "claim_batches": len(claims),
        "mean_claimed_per_batch": round(completed / max(1, len(claims)), 1),
        "empty_claims": sum(o["empty_claims"] for o in outs),
        "python_cpu_s": round(sum(o["python_cpu_s"] for o in outs), 2),
        "postgres_cpu_s_our_backends": cpu.seconds(ours),
        "postgres_cpu_s_all": cpu.seconds(),
    }


def median_rep(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the repetition with the median tasks/s, with every repetition's tasks/s beside it."""
    ordered = sorted(reps, key=lambda r: r["tasks_per_s"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["tasks_per_s_all_reps"] = [r["tasks_per_s"] for r in reps]
    chosen["starts_per_s_median"] = statistics.median(r["starts_per_s"] for r in reps)
    return chosen


# --- profile ------------------------------------------------------------------------------------


def function_profile(
    url: str, runs: int, clients: int, batch: int, local: bool
) -> list[dict[str, Any]]:
    """Drain a single-step workload with ``track_functions = pl``; return time per function."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pg_stat_reset()")
    drive_once(url, "single", runs, clients, batch, local, track_functions=True)
    time.sleep(1.5)  # backends flush function statistics when they exit; give them a moment
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select schemaname || '.' || funcname, calls, total_time, self_time"
            " from pg_stat_user_functions order by self_time desc"
        ).fetchall()
    return [
        {"function": r[0], "calls": r[1], "total_ms": round(r[2], 1), "self_ms": round(r[3], 1)}
        for r in rows
    ]


_DURATION = re.compile(r"duration: ([0-9.]+) ms")


def split_plan(message: str) -> tuple[float, str, str] | None:
    """Split an auto_explain message into (duration ms, query text on one line, plan)."""
    match = _DURATION.search(message)
    if not match or "Query Text:" not in message:
        return None
    lines = message.split("Query Text:", 1)[1].split("\n")
    # The query text may span lines; the plan starts at the first node line (ANALYZE is on).
    at = next(
        (
            i
            for i, line in enumerate(lines)
            if "(actual time=" in line or "(never executed)" in line
        ),
        len(lines),
    )
    return float(match.group(1)), " ".join(" ".join(lines[:at]).split()), "\n".join(lines[at:])


def statement_profile(url: str, batch: int, batches: int = 5) -> dict[str, list[dict[str, Any]]]:
    """Time each statement inside claim_tasks and complete_tasks with auto_explain.

    One connection starts single-step runs, warms the plan caches with a few batches, then loads
    auto_explain (nested statements, ANALYZE, BUFFERS) with ``client_min_messages = log`` so the
    plans come back as notices, and runs ``batches`` claim and complete batches. Returns, per
    top-level call, the nested statements with their summed duration, slowest first.
    """
    reset_tables(url)
    notices: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select count(workflow.start_flow('bench_single', jsonb_build_object('i', g)))"
            " from generate_series(1, %s) as g",
            [batch * (batches + 5)],
        )
        conn.execute("analyze workflow.runs, workflow.step_states, workflow.tasks")

        def one_batch() -> tuple[list[int], list[int]]:
            rows = conn.execute(
                "select task_id, attempt from workflow.claim_tasks(%s, %s)", [QUEUE, batch]
            ).fetchall()
            return [r[0] for r in rows], [r[1] for r in rows]

        def complete(ids: list[int], attempts: list[int]) -> None:
            conn.execute(
                "select count(*)"
                " from workflow.complete_tasks(%s::bigint[], %s::int[], %s::jsonb[])",
                [ids, attempts, [Jsonb({"ok": True})] * len(ids)],
            )

        for _ in range(5):
            complete(*one_batch())
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("load 'auto_explain'")
        for setting, value in (
            ("auto_explain.log_min_duration", "0"),
            ("auto_explain.log_analyze", "on"),
            ("auto_explain.log_buffers", "on"),
            ("auto_explain.log_nested_statements", "on"),
            ("auto_explain.log_timing", "on"),
            ("client_min_messages", "log"),
        ):
            conn.execute(
                sql.SQL("set {} = {}").format(
                    sql.Identifier(*setting.split(".")), sql.Literal(value)
                )
            )
        phases: dict[str, list[str]] = {"claim_tasks": [], "complete_tasks": [], "start_flow": []}
        for _ in range(batches):
            start = len(notices)
            conn.execute(
                "select count(workflow.start_flow('bench_single', jsonb_build_object('i', g)))"
                " from generate_series(1, %s) as g",
                [START_BATCH // batches or 1],
            )
            phases["start_flow"].extend(notices[start:])
            start = len(notices)
            ids, attempts = one_batch()
            phases["claim_tasks"].extend(notices[start:])
            start = len(notices)
            complete(ids, attempts)
            phases["complete_tasks"].extend(notices[start:])
        conn.execute("set client_min_messages = notice")

    report: dict[str, list[dict[str, Any]]] = {}
    for phase, messages in phases.items():
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        plans: dict[str, str] = {}
        for message in messages:
            parsed = split_plan(message)
            if parsed is None:
                continue
            ms, text, plan = parsed
            sums[text] += ms
            counts[text] += 1
            plans.setdefault(text, plan)
        report[phase] = [
            {
                "statement": text[:300],
                "ms_per_call": round(sums[text] / batches, 3),
                "calls_per_call": counts[text] / batches,
                "plan": plans[text],
            }
            for text in sorted(sums, key=lambda t: -sums[t])
        ]
    return report


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help="admin connection to the server (default: $DATABASE_URL or %(default)s)",
    )
    p.add_argument("--clients", type=int, default=8, help="client processes (default 8)")
    p.add_argument("--batch", type=int, default=50, help="tasks per claim/complete (default 50)")
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help="single-step runs; chains get runs/4 and diamonds runs/20 (default 20000)",
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions per workload (default 3)")
    p.add_argument("--pgbench-seconds", type=int, default=None, help="pgbench -T (default 10)")
    p.add_argument("--quick", action="store_true", help="a ~20 s version: fewer runs, one rep")
    p.add_argument("--no-profile", action="store_true", help="skip the profile sections")
    p.add_argument(
        "--no-worker",
        action="store_true",
        help="skip the end-to-end runs through the Python worker (bench/worker_e2e.py)",
    )
    p.add_argument(
        "--no-messaging",
        action="store_true",
        help="skip the notification latency/throughput section (bench/messaging.py)",
    )
    p.add_argument(
        "--no-flow-control",
        action="store_true",
        help="skip the flow-control section (bench/flow_control.py: limits' claim cost, fairness)",
    )
    p.add_argument(
        "--no-schedules",
        action="store_true",
        help="skip the schedules section (bench/schedules.py: idle claims, 0 vs 1,000 schedules)",
    )
    p.add_argument(
        "--no-peers",
        action="store_true",
        help="skip the peer section (bench/peers.py: PgQueuer side by side, W1-W4, cost per task)",
    )
    p.add_argument(
        "--no-clients",
        action="store_true",
        help="skip the clients section (bench/clients.py: Client vs AsyncClient, W1-W4)",
    )
    p.add_argument(
        "--no-versions",
        action="store_true",
        help="skip the versions section (bench/versions.py: 1 version vs version 20)",
    )
    p.add_argument("--output", type=Path, default=OUT_DIR / "latest.json")
    args = p.parse_args(argv)
    args.runs = args.runs or (4000 if args.quick else 20000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.pgbench_seconds = args.pgbench_seconds or (5 if args.quick else 10)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run pgbench, the three workloads and the profile; print a table and write the JSON."""
    args = parse_args(argv)
    admin = args.database_url
    local = server_is_local(admin)
    sizes = {
        "single": args.runs,
        "chain": max(1, args.runs // 4),
        "diamond": max(1, args.runs // 20),
    }
    began = time.monotonic()
    report: dict[str, Any] = {
        "settings": {
            "clients": args.clients,
            "batch": args.batch,
            "reps": args.reps,
            "runs": sizes,
            "pgbench_seconds": args.pgbench_seconds,
            "quick": args.quick,
        },
        "machine": machine_facts(),
        "server": server_facts(admin),
    }
    print(
        f"server: {report['server']['server_version'].split(' on ')[0]}, "
        f"{report['machine']['cores']} cores, shared_buffers {report['server']['shared_buffers']},"
        f" synchronous_commit {report['server']['synchronous_commit']},"
        f" fsync {report['server']['fsync']}; load {report['machine']['load_average_at_start']}"
    )
    print(
        f"pgbench: single-row UPDATE, -c {args.clients} -j 2 -T {args.pgbench_seconds} ...",
        flush=True,
    )
    report["pgbench"] = run_pgbench(admin, args.clients, args.pgbench_seconds, local)
    print(f"  {report['pgbench']['tps']:.0f} commits/s", flush=True)

    with throwaway_database(admin, "sw_bench") as db:
        url = make_conninfo(admin, dbname=db)
        install(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for flow in FLOWS.values():
                conn.execute("select workflow.register_flow(%s)", [Jsonb(flow)])
        report["workloads"] = {}
        for workload, runs in sizes.items():
            reps = []
            for rep in range(args.reps):
                print(
                    f"{workload}: {runs} runs x {STEPS[workload]} tasks, rep {rep + 1}/{args.reps}"
                    " ...",
                    end=" ",
                    flush=True,
                )
                reps.append(drive_once(url, workload, runs, args.clients, args.batch, local))
                print(f"{reps[-1]['tasks_per_s']:.0f} tasks/s", flush=True)
            report["workloads"][workload] = median_rep(reps)
        if not args.no_profile:
            print(
                "profile: function times over a single-step drain, statement times of "
                "claim/complete batches ...",
                flush=True,
            )
            report["profile"] = {
                "functions_single_step_drain": function_profile(
                    url,
                    min(args.runs, 2000 if args.quick else 10000),
                    args.clients,
                    args.batch,
                    local,
                ),
                "statements": statement_profile(url, args.batch),
            }
    if not args.no_worker:
        # The end-to-end section (bench/worker_e2e.py) in its own throwaway database; its py-spy
        # profile runs only in the full version (it needs py-spy, and a longer drain).
        import worker_e2e

        report["worker_e2e"] = worker_e2e.run_section(
            admin,
            reps=args.reps,
            chains=3 if args.quick else 10,
            pgbench_seconds=args.pgbench_seconds,
            profile=not (args.no_profile or args.quick),
        )
    if not args.no_messaging:
        report["messaging"] = script_section("messaging", admin, quick=args.quick)
    if not args.no_flow_control:
        import flow_control

        report["flow_control"] = flow_control.run_section(admin, quick=args.quick)
    if not args.no_schedules:
        import schedules

        report["schedules"] = schedules.run_section(admin, quick=args.quick)
    if not args.no_peers:
        import peers

        try:
            report["peers"] = peers.run_section(admin, quick=args.quick)
        except Exception as exc:  # a peer that will not run must not cost the rest of the report
            print(f"peers: SKIPPED after an error: {exc}", flush=True)
            report["peers"] = {"skipped": f"error: {exc}"}
    for name in ("clients", "versions"):
        if not getattr(args, f"no_{name}"):
            report[name] = script_section(name, admin, quick=args.quick)
    report["total_wall_s"] = round(time.monotonic() - began, 1)
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output}")
    return 0


def script_section(name: str, admin: str, *, quick: bool) -> dict[str, Any]:
    """Run bench/<name>.py as a process of its own; fold its JSON result into this report.

    It prints its own table; its result file (build/bench/<name>.json) is read back.
    """
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, str(here / f"{name}.py"), "--database-url", admin]
    if quick:
        cmd.append("--quick")
    print(f"\n== {name}: bench/{name}.py ==", flush=True)
    done = subprocess.run(cmd, check=False)
    result_file = here.parent / "build" / "bench" / f"{name}.json"
    if done.returncode != 0 or not result_file.exists():
        return {"error": f"bench/{name}.py exited with {done.returncode}"}
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


def print_report(report: dict[str, Any]) -> None:
    """Print the results table, the goal check and the top of the profile."""
    pgb = report["pgbench"]["tps"]
    s = report["settings"]
    print(
        f"\n== SQL-only drive: {s['clients']} client processes, batch {s['batch']}, "
        f"median of {s['reps']} =="
    )
    head = (
        f"{'workload':<9}{'runs':>7}{'tasks':>8}{'starts/s':>10}{'tasks/s':>9}{'vs pgbench':>11}"
        f"{'claim p50/p95 ms':>18}{'complete p50/p95 ms':>21}{'pg CPU s':>10}{'py CPU s':>10}"
        f"{'wall s':>8}"
    )
    print(head)
    for name, w in report["workloads"].items():
        pg_cpu = w["postgres_cpu_s_all"]
        print(
            f"{name:<9}{w['runs']:>7}{w['tasks']:>8}{w['starts_per_s_median']:>10.0f}"
            f"{w['tasks_per_s']:>9.0f}{w['tasks_per_s'] / pgb:>10.2f}x"
            f"{w['claim_ms_p50']:>9.1f}/{w['claim_ms_p95']:<8.1f}"
            f"{w['complete_ms_p50']:>11.1f}/{w['complete_ms_p95']:<9.1f}"
            f"{(pg_cpu if pg_cpu is not None else float('nan')):>10.1f}"
            f"{w['python_cpu_s']:>10.1f}{w['drain_wall_s']:>8.1f}"
        )
    print(
        f"pgbench single-row UPDATE: {pgb:.0f} commits/s "
        f"(postgres CPU {report['pgbench']['postgres_cpu_s']} s"
        f" over {report['pgbench']['wall_s']} s)"
    )
    for name, w in report["workloads"].items():
        verdict = "meets" if w["tasks_per_s"] >= pgb else "MISSES"
        print(
            f"goal (tasks/s >= pgbench commits/s), {name}: {verdict} "
            f"({w['tasks_per_s']:.0f} vs {pgb:.0f})"
        )
    prof = report.get("profile")
    if prof:
        print("\n== where the time goes (single-step) ==")
        print("functions over a whole drain (self time, PL/pgSQL only):")
        funcs = prof["functions_single_step_drain"]
        total = sum(f["self_ms"] for f in funcs) or 1.0
        for f in funcs[:10]:
            print(
                f"  {f['function']:<34}{f['calls']:>8} calls {f['self_ms']:>10.0f} ms self "
                f"({100 * f['self_ms'] / total:4.1f}%) {f['total_ms']:>10.0f} ms total"
            )
        for phase, stmts in prof["statements"].items():
            unit = f"{START_BATCH // 5} starts" if phase == "start_flow" else "batch"
            print(
                f"statements of one {phase} call ({unit}; auto_explain ANALYZE, ms per call;"
                " the first line is the whole call):"
            )
            for st in stmts[:8]:
                print(
                    f"  {st['ms_per_call']:>8.2f} ms  x{st['calls_per_call']:<4g} "
                    f"{st['statement'][:110]}"
                )
    if "worker_e2e" in report:
        import worker_e2e

        worker_e2e.print_section(report["worker_e2e"], pgbench_multi=report["pgbench"])
    if "flow_control" in report:
        import flow_control

        flow_control.print_section(report["flow_control"])
    if "schedules" in report:
        import schedules

        schedules.print_section(report["schedules"])
    if "peers" in report:
        import peers

        peers.print_section(report["peers"])
    print(f"\ntotal {report['total_wall_s']} s")


if __name__ == "__main__":
    sys.exit(main())
