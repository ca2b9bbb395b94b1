"""Benchmark a peer queue next to the engine: W1-W4 for both, side by side in one run.

Why: a throughput figure alone says little on a shared two-core machine; the same workloads run
against the fastest Postgres queue we know of (PgQueuer), at the same moment on the same server,
turn it into a ratio that holds. And the cost of a task is more than its time: WAL written,
rows written and CPU spent (PostgreSQL's and Python's) are what a loaded server pays, so they are
reported per task for both systems.

What it does:

1. Installs PgQueuer (``PEER_REQUIREMENT``) from the package index into its own virtual
   environment, ``build/peers-venv`` (reused when it already holds that version). If that fails
   the section is skipped with a message; nothing else depends on it.
2. Starts a private PostgreSQL cluster (``initdb`` + ``pg_ctl`` in a temporary directory, on a
   free port, fsync and synchronous_commit on, everything else at initdb's defaults), so that the
   WAL position, ``pg_stat_wal`` and the CPU of every postgres process of that cluster belong to
   this benchmark alone (on a shared server other sessions write WAL too). ``--on-server`` uses
   the given server instead; WAL figures are then server-wide and marked so.
3. In one throwaway database per system (PgQueuer's schema in its own), ONE worker process,
   concurrency 10, no-op handlers, each workload ``reps`` times, the systems interleaved per
   repetition so that load changes fall on both:

   * **W1**: drain 2,000 one-step jobs (jobs/s);
   * **W2**: 200 three-step chains (steps/s);
   * **W3**: 100 diamonds 1 -> 10 -> 1 (steps/s);
   * **W4**: hop latency along a 20-step chain on an idle worker (p50/p95 ms over all hops).

   Ours: ``bench/worker_e2e.py``'s drain and hop measurements (a ``Worker`` process, native
   DAGs, window from the database's first claim to its last completion). PgQueuer: its
   ``QueueManager`` (``batch_size=10``) in a process of the peer venv; chains and fan-in are
   emulated in handlers the way a user of a flat queue writes them: a chain step enqueues the
   next step as it ends; a diamond's head enqueues the ten branches, each branch decrements a
   per-run counter row (``update ... returning``) and the one that reaches zero enqueues the
   join. Its window runs from the first handler start to the moment the queue table is seen
   empty (polled every 2 ms, so at most that much in its disfavour). Hop latency: from just
   before step n's handler enqueues step n+1 (for us: ``completed_at`` of step n, stamped inside
   ``complete_tasks`` before its commit) to step n+1's handler start.
4. Cost per W1 task, over enqueue + drain of the 2,000 jobs: WAL bytes
   (``pg_current_wal_lsn()`` difference, and ``pg_stat_wal``'s full-page images), rows written
   (``pg_stat_user_tables`` n_tup_ins + n_tup_upd + n_tup_del of the system's database), CPU of
   the cluster's postgres processes and of the worker process, in microseconds per task.

Run alone: ``python bench/peers.py [--quick] [--reps N] [--on-server]``; ``make bench`` runs it as
a section of ``bench/run.py`` (``--no-peers`` skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
OUT_DIR = REPO_ROOT / "build" / "bench"
PEER_VENV = REPO_ROOT / "build" / "peers-venv"
PEER_REQUIREMENT = "pgqueuer==1.6.0"
PEER_NAME = "PgQueuer 1.6.0"
PEER_APP = "sw_bench_peer_worker"  # application_name of the peer worker's connections
CONCURRENCY = 10
W1_JOBS = 2000
W2_CHAINS = 200
W3_DIAMONDS = 100
WIDTH = 10
HOP_STEPS = 20
STEPS = {"single": 1, "chain": 3, "diamond": WIDTH + 2}
SIZES = {"single": W1_JOBS, "chain": W2_CHAINS, "diamond": W3_DIAMONDS}


# --- the peer's virtual environment --------------------------------------------------------------


def peer_python() -> tuple[Path | None, str]:
    """Return the peer venv's python (installing PgQueuer there first if needed) and a note."""
    py = PEER_VENV / "bin" / "python"
    check = [str(py), "-c", "import pgqueuer, psycopg; print(pgqueuer.__version__)"]
    want = PEER_REQUIREMENT.split("==")[1]
    if py.exists():
        done = subprocess.run(check, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == want:
            return py, f"reused {PEER_VENV.relative_to(REPO_ROOT)}"
    try:
        PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True,
                       capture_output=True, text=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", PEER_REQUIREMENT,
                        "psycopg[binary]"], check=True, capture_output=True, text=True,
                       timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"cannot install {PEER_REQUIREMENT}: {detail.strip()[-300:]}"
    done = subprocess.run(check, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, f"{PEER_REQUIREMENT} installed but does not import: {done.stderr[-300:]}"
    return py, f"installed into {PEER_VENV.relative_to(REPO_ROOT)}"


# --- a private cluster ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


@contextmanager
def private_cluster() -> Iterator[tuple[str, int]]:
    """Start a throwaway cluster on a free port; yield (admin URL, postmaster pid); remove it.

    initdb's defaults (shared_buffers 128 MB, fsync on, synchronous_commit on); run as root
    (this bench machine), the server runs as ``nobody``, like any unprivileged account.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("initdb/pg_ctl not found")
    tmp = Path(tempfile.mkdtemp(prefix="sw_bench_peers_"))
    data = tmp / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        os.chmod(tmp, 0o777)
        as_user = ["runuser", "-u", "nobody", "--"]
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "bench", "--auth=trust",
                        "-E", "UTF8", "--no-instructions"], check=True, capture_output=True,
                       text=True)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(tmp / "log"), "-w",
                        "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1"
                        " -c max_connections=50", "start"],
                       check=True, capture_output=True, text=True)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield f"postgresql://bench@127.0.0.1:{port}/postgres", pid
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def cluster_pids(postmaster: int | None) -> list[int]:
    """Return the postmaster and its children (every process of that cluster), or []."""
    if postmaster is None:
        return []
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("PPid:") and int(line.split()[1]) == postmaster:
                        pids.append(int(entry.name))
                        break
            except OSError:
                continue
    return pids


class ClusterCpu:
    """CPU seconds of a cluster's processes over an interval, kept for ones that exit."""

    def __init__(self, postmaster: int | None) -> None:
        from run import cpu_seconds  # bench/run.py

        self._cpu = cpu_seconds
        self.postmaster = postmaster
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for pid in cluster_pids(self.postmaster):
            v = self._cpu(pid)
            if v:
                self.last[pid] = v

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def start(self) -> ClusterCpu:
        """Take the baseline and start sampling."""
        if self.postmaster is not None:
            self.base = {p: self._cpu(p) for p in cluster_pids(self.postmaster)}
            self.last = dict(self.base)
            self._thread.start()
        return self

    def stop(self) -> float | None:
        """Stop; return the CPU seconds of the interval (None without a private cluster)."""
        if self.postmaster is None:
            return None
        self._stop.set()
        self._thread.join()
        self._sample()
        return sum(v - self.base.get(p, 0.0) for p, v in self.last.items())


# --- cost counters -------------------------------------------------------------------------------


def counters(url: str) -> dict[str, float]:
    """WAL position and full-page images (server-wide), rows written in this database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select pg_current_wal_lsn() - '0/0'::pg_lsn, (select wal_fpi from pg_stat_wal),"
            " (select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
            "  from pg_stat_user_tables)").fetchone()
    assert row is not None
    return {"wal": float(row[0]), "fpi": float(row[1]), "rows": float(row[2])}


def cost_diff(before: dict[str, float], after: dict[str, float], tasks: int) -> dict[str, float]:
    """Per-task WAL bytes, full-page images and rows written between two counter readings."""
    return {
        "wal_bytes_per_task": round((after["wal"] - before["wal"]) / tasks, 1),
        "fpi_per_task": round((after["fpi"] - before["fpi"]) / tasks, 3),
        "rows_written_per_task": round((after["rows"] - before["rows"]) / tasks, 2),
    }


def settle_stats() -> None:
    """Backends report table statistics when idle, at most once a second: wait for that."""
    time.sleep(1.2)


# --- the peer worker (runs in the peer venv: it imports only pgqueuer and psycopg) ---------------


def serve_peer(url: str, concurrency: int) -> int:
    """Peer worker process: install the schema, wait for "go", serve until "stop"; print stats."""
    import psycopg
    from pgqueuer import PgQueuer, Queries
    from pgqueuer.db import PsycopgDriver

    hops: list[float] = []
    first_start: list[float] = []
    done = [0]

    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        side = await psycopg.AsyncConnection.connect(url, autocommit=True)
        queries = Queries(PsycopgDriver(side))
        if not await queries.schema_is_installed():
            await queries.install()
        await side.execute(
            "create table if not exists peer_fanin (run int primary key, remaining int not null)")
        pgq = PgQueuer(PsycopgDriver(conn))

        def started() -> None:
            if not first_start:
                first_start.append(time.time())

        @pgq.entrypoint("single")
        async def single(_job: Any) -> None:
            started()
            done[0] += 1

        @pgq.entrypoint("chain")
        async def chain(job: Any) -> None:
            started()
            p = json.loads(job.payload)
            if p["s"] < 3:
                await queries.enqueue("chain", json.dumps({"r": p["r"], "s": p["s"] + 1}).encode())
            done[0] += 1

        @pgq.entrypoint("diamond")
        async def diamond(job: Any) -> None:
            started()
            p = json.loads(job.payload)
            if p["s"] == "a":
                body = [json.dumps({"r": p["r"], "s": "b"}).encode()] * WIDTH
                await queries.enqueue(["diamond"] * WIDTH, list(body), [0] * WIDTH)
            elif p["s"] == "b":
                cur = await side.execute(
                    "update peer_fanin set remaining = remaining - 1 where run = %s"
                    " returning remaining", [p["r"]])
                row = await cur.fetchone()
                if row is not None and row[0] == 0:
                    await queries.enqueue("diamond", json.dumps({"r": p["r"], "s": "j"}).encode())
            done[0] += 1

        @pgq.entrypoint("hop")
        async def hop(job: Any) -> None:
            now = time.time()
            p = json.loads(job.payload)
            if "t" in p:
                hops.append((now - p["t"]) * 1000)
            if p["s"] < HOP_STEPS:
                nxt = {"r": p["r"], "s": p["s"] + 1, "t": time.time()}
                await queries.enqueue("hop", json.dumps(nxt).encode())
            done[0] += 1

        print(json.dumps({"ready": os.getpid()}), flush=True)
        loop = asyncio.get_running_loop()
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != "go":
            return

        async def stopper() -> None:
            await loop.run_in_executor(None, sys.stdin.readline)
            pgq.shutdown.set()

        stop_task = asyncio.create_task(stopper())
        print(json.dumps({"started": time.time()}), flush=True)
        await pgq.run(batch_size=concurrency)
        stop_task.cancel()
        await side.close()

    asyncio.run(main())
    print(json.dumps({"stats": {"done": done[0], "first_start": first_start[0] if first_start
                                else None, "hops_ms": hops}}), flush=True)
    return 0


class PeerProcess:
    """The parent's handle on one peer worker process (``peers.py serve-peer``)."""

    def __init__(self, py: Path, url: str) -> None:
        env = dict(os.environ, PGAPPNAME=PEER_APP)
        self.proc = subprocess.Popen(
            [str(py), str(Path(__file__).resolve()), "serve-peer", "--database-url", url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.pid: int = self._line()["ready"]

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the peer worker exited (code {self.proc.wait()})")
            if line.startswith("{"):
                parsed: dict[str, Any] = json.loads(line)
                return parsed

    def go(self) -> None:
        """Start serving; return once the worker said so."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self._line()

    def stop(self) -> dict[str, Any]:
        """Stop; return the worker's stats (first handler start, hop latencies)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        out = self._line()
        self.proc.wait(30)
        stats: dict[str, Any] = out.get("stats") or {}
        return stats

    def kill(self) -> None:
        """Make sure the process is gone (after an error)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- measuring the peer --------------------------------------------------------------------------


def _peer_backend_cpu(conn: Any) -> dict[int, float]:
    from run import cpu_seconds

    pids = [r[0] for r in conn.execute(
        "select pid from pg_stat_activity where application_name = %s", [PEER_APP]).fetchall()]
    return {p: cpu_seconds(p) for p in pids}


#: PgQueuer's own batch enqueue (its ``build_enqueue_query``, without dedupe keys): the job row
#: and its 'queued' log row, so that the peer's WAL and rows per task are what its users pay.
PEER_ENQUEUE = """
    with input as materialized (
        select nextval((select pg_get_serial_sequence('pgqueuer', 'id'))) as id,
            0 as priority, %s::text as entrypoint, convert_to(p, 'utf8') as payload
        from unnest(%s::text[]) as p
    ),
    inserted as (
        insert into pgqueuer (id, priority, entrypoint, payload, execute_after, status)
        select id, priority, entrypoint, payload, now(), 'queued' from input
        returning id, entrypoint, priority
    )
    insert into pgqueuer_log (job_id, status, entrypoint, priority)
    select id, 'queued', entrypoint, priority from inserted
"""


def _enqueue_peer(conn: Any, workload: str) -> None:
    """Load a workload's first jobs into PgQueuer's tables, as its batch enqueue does."""
    n = SIZES[workload]
    if workload == "single":
        payloads = [json.dumps({"i": i}) for i in range(n)]
    elif workload == "chain":
        payloads = [json.dumps({"r": i, "s": 1}) for i in range(n)]
    else:
        conn.execute("truncate peer_fanin")
        conn.execute("insert into peer_fanin select g, %s from generate_series(1, %s) g",
                     [WIDTH, n])
        payloads = [json.dumps({"r": i, "s": "a"}) for i in range(1, n + 1)]
    for i in range(0, n, 100):
        chunk = payloads[i:i + 100]
        conn.execute(PEER_ENQUEUE, [workload, chunk])


def peer_drain(py: Path, url: str, workload: str, postmaster: int | None) -> dict[str, Any]:
    """Load one workload, let a fresh peer worker drain it; measure rate and cost per task."""
    import psycopg
    from run import cpu_seconds

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate pgqueuer, pgqueuer_log")
        before = counters(url)
        cpu = ClusterCpu(postmaster).start()
        _enqueue_peer(conn, workload)
        conn.execute("analyze pgqueuer")
        worker = PeerProcess(py, url)
        try:
            load = round(os.getloadavg()[0], 2)
            py0 = cpu_seconds(worker.pid)
            worker.go()
            pg0 = _peer_backend_cpu(conn)
            deadline = time.monotonic() + 300
            while one_value(conn, "select exists (select 1 from pgqueuer)"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"peer {workload}: not drained after 300 s")
                time.sleep(0.002)
            emptied = time.time()
            py_cpu = cpu_seconds(worker.pid) - py0
            pg_cpu = sum(cpu_seconds(p) - v for p, v in _peer_backend_cpu(conn).items()
                         if p in pg0)
            stats = worker.stop()
        finally:
            worker.kill()
        cluster_cpu = cpu.stop()
        settle_stats()
        after = counters(url)
    tasks = SIZES[workload] * STEPS[workload]
    if stats.get("done") != tasks:
        raise RuntimeError(f"peer {workload}: {stats.get('done')}/{tasks} handlers ran")
    window = emptied - float(stats["first_start"])
    return {
        "tasks": tasks, "window_s": round(window, 3), "per_s": round(tasks / window, 1),
        "worker_cpu_s": round(py_cpu, 3), "backends_cpu_s": round(pg_cpu, 3),
        "cluster_cpu_s": None if cluster_cpu is None else round(cluster_cpu, 3),
        "load_1m": load, **cost_diff(before, after, tasks),
    }


def peer_hops(py: Path, url: str, chains: int) -> dict[str, Any]:
    """Run ``chains`` 20-step chains one at a time on an idle peer worker; hop latencies."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate pgqueuer, pgqueuer_log")
        worker = PeerProcess(py, url)
        try:
            load = round(os.getloadavg()[0], 2)
            worker.go()
            for i in range(chains):
                time.sleep(0.2)  # an idle worker
                # The queue table's trigger notifies the worker; a chain's next job is in
                # the table before its current one leaves it, so empty means done.
                conn.execute(PEER_ENQUEUE, ["hop", [json.dumps({"r": i, "s": 1})]])
                deadline = time.monotonic() + 60
                while one_value(conn, "select exists (select 1 from pgqueuer)"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("a peer hop chain did not end within 60 s")
                    time.sleep(0.01)
            stats = worker.stop()
        finally:
            worker.kill()
    hops = stats.get("hops_ms") or []
    if len(hops) != chains * (HOP_STEPS - 1):
        raise RuntimeError(f"peer hops: {len(hops)}/{chains * (HOP_STEPS - 1)} measured")
    return {"hops": len(hops), "hops_ms": hops, "load_1m": load}


def one_value(conn: Any, query: str, params: Sequence[Any] = ()) -> Any:
    """Run a one-row, one-column query and return the value."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# --- measuring ours (bench/worker_e2e.py's measurements, plus the cost counters) -----------------


def ours_drain(url: str, workload: str, postmaster: int | None) -> dict[str, Any]:
    """worker_e2e's drain of one workload, with WAL, rows and cluster CPU around load + drain."""
    import psycopg
    import worker_e2e

    with psycopg.connect(url, autocommit=True) as conn:
        worker_e2e.reset(conn)
    before = counters(url)
    cpu = ClusterCpu(postmaster).start()
    r = worker_e2e.drain_once(url, workload)
    cluster_cpu = cpu.stop()
    settle_stats()
    after = counters(url)
    return {
        "tasks": r["tasks"], "window_s": r["window_s"], "per_s": r["per_s"],
        "worker_cpu_s": r["worker_cpu_s"], "backends_cpu_s": r["backends_cpu_s"],
        "cluster_cpu_s": None if cluster_cpu is None else round(cluster_cpu, 3),
        "tasks_per_claim": r["tasks_per_claim"], "load_1m": r["load_1m"],
        **cost_diff(before, after, r["tasks"]),
    }


def ours_hops(url: str, chains: int) -> dict[str, Any]:
    """worker_e2e's hop measurement (db completed_at -> next handler start), all hops kept."""
    import worker_e2e

    h = worker_e2e.hop_once(url, chains, keep_hops=True)
    return {"hops": h["hops"], "hops_ms": h["db_hops_ms"], "load_1m": h["load_1m"]}


# --- the section ---------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 3)


def _median_rep(reps: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(reps, key=lambda r: r["per_s"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["all_reps"] = [r["per_s"] for r in reps]
    chosen["loads"] = [r["load_1m"] for r in reps]
    return chosen


def _per_task_cpu(r: dict[str, Any]) -> dict[str, Any]:
    tasks = r["tasks"]
    pg = r["cluster_cpu_s"] if r.get("cluster_cpu_s") is not None else r["backends_cpu_s"]
    return {"pg_cpu_us_per_task": round(1e6 * pg / tasks, 1),
            "py_cpu_us_per_task": round(1e6 * r["worker_cpu_s"] / tasks, 1)}


def run_section(admin_url: str, *, quick: bool, reps: int | None = None,
                on_server: bool = False) -> dict[str, Any]:
    """Both systems, W1-W4, in throwaway databases; return the section of the report."""
    import psycopg
    import run as sql_bench
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from singularity_workflow import Client, install

    reps = reps or (1 if quick else 3)
    hop_reps = 1 if quick else 5
    print(f"peers: installing {PEER_REQUIREMENT} into its own venv ...", flush=True)
    py, note = peer_python()
    out: dict[str, Any] = {"peer_name": PEER_NAME, "venv": note, "settings": {
        "concurrency": CONCURRENCY, "reps": reps, "hop_reps": hop_reps, "sizes": SIZES,
        "hop_steps": HOP_STEPS, "peer_batch_size": CONCURRENCY}}
    if py is None:
        print(f"peers: SKIPPED: {note}", flush=True)
        out["skipped"] = note
        return out
    import worker_e2e

    with (private_cluster() if not on_server else _given(admin_url)) as (admin, postmaster):
        out["server"] = "private cluster (initdb defaults)" if not on_server else "given server"
        out["server_facts"] = sql_bench.server_facts(admin)
        with (sql_bench.throwaway_database(admin, "sw_bench_peer_ours") as ours_db,
              sql_bench.throwaway_database(admin, "sw_bench_peer_pgq") as peer_db):
            ours_url = make_conninfo(admin, dbname=ours_db)
            peer_url = make_conninfo(admin, dbname=peer_db)
            install(ours_url)
            with Client(ours_url) as client:
                for d in worker_e2e.define_flows():
                    client.register_flow(d)
            # The peer's schema: its worker installs it on first start.
            PeerProcess(py, peer_url).kill()
            with psycopg.connect(peer_url, autocommit=True) as conn:
                conn.execute(sql.SQL("alter database {} set synchronous_commit = on").format(
                    sql.Identifier(peer_db)))
            results: dict[str, dict[str, list[dict[str, Any]]]] = {"ours": {}, "peer": {}}
            for workload in SIZES:
                for rep in range(reps):
                    print(f"peers: {workload}, rep {rep + 1}/{reps}: ours ...", end=" ",
                          flush=True)
                    r = ours_drain(ours_url, workload, postmaster)
                    results["ours"].setdefault(workload, []).append(r)
                    print(f"{r['per_s']:.0f}/s; {PEER_NAME} ...", end=" ", flush=True)
                    p = peer_drain(py, peer_url, workload, postmaster)
                    results["peer"].setdefault(workload, []).append(p)
                    print(f"{p['per_s']:.0f}/s (load {p['load_1m']})", flush=True)
            hops: dict[str, list[float]] = {"ours": [], "peer": []}
            for rep in range(hop_reps):
                print(f"peers: hop latency, rep {rep + 1}/{hop_reps} ...", flush=True)
                hops["ours"] += ours_hops(ours_url, 1)["hops_ms"]
                hops["peer"] += peer_hops(py, peer_url, 1)["hops_ms"]
    for system in ("ours", "peer"):
        out[system] = {w: _median_rep(rs) for w, rs in results[system].items()}
        out[system]["single"].update(_per_task_cpu(out[system]["single"]))
        out[system]["hop"] = {"hops": len(hops[system]), "p50_ms": _pct(hops[system], 50),
                              "p95_ms": _pct(hops[system], 95)}
    out["ratios"] = {w: round(out["ours"][w]["per_s"] / out["peer"][w]["per_s"], 2)
                     for w in SIZES}
    return out


@contextmanager
def _given(url: str) -> Iterator[tuple[str, int | None]]:
    yield url, None


def print_section(sec: dict[str, Any]) -> None:
    """Print the side-by-side table and the per-task costs."""
    if "skipped" in sec:
        print(f"\n== peers: skipped ({sec['skipped']}) ==")
        return
    s = sec["settings"]
    f = sec["server_facts"]
    print(f"\n== peers: singularity-workflow vs {sec['peer_name']}, side by side, {sec['server']}: "
          f"{f['server_version'].split(' on ')[0]}, shared_buffers {f['shared_buffers']}, fsync "
          f"{f['fsync']}, synchronous_commit {f['synchronous_commit']}; 1 worker process each, "
          f"concurrency {s['concurrency']}, no-op handlers, median of {s['reps']} ==")
    print(f"{'system':<22}{'W1 jobs/s':>10}{'W2 steps/s':>11}{'W3 steps/s':>11}"
          f"{'W4 p50/p95 ms':>15}{'loads (W1)':>16}")
    for key, name in (("peer", sec["peer_name"]), ("ours", "singularity-workflow")):
        r = sec[key]
        loads = "/".join(f"{v:.1f}" for v in r["single"]["loads"])
        print(f"{name:<22}{r['single']['per_s']:>10.0f}{r['chain']['per_s']:>11.0f}"
              f"{r['diamond']['per_s']:>11.0f}"
              f"{r['hop']['p50_ms']:>8.2f}/{r['hop']['p95_ms']:<6.2f}{loads:>16}")
    ra = sec["ratios"]
    print(f"ours / peer: W1 {ra['single']:.2f}x, W2 {ra['chain']:.2f}x, W3 {ra['diamond']:.2f}x"
          f" (goal 2x); W4 hops pooled: {sec['ours']['hop']['hops']} ours,"
          f" {sec['peer']['hop']['hops']} peer (goal p50 <= 1.5 ms, p95 <= 4 ms)")
    wal_note = "" if sec["server"].startswith("private") else " (server-wide: other sessions too)"
    print(f"cost per W1 task (enqueue + drain of {s['sizes']['single']} one-step jobs){wal_note}:")
    print(f"{'system':<22}{'WAL B':>8}{'FPI':>7}{'rows':>7}{'PG CPU us':>11}{'py CPU us':>11}")
    for key, name in (("peer", sec["peer_name"]), ("ours", "singularity-workflow")):
        w = sec[key]["single"]
        print(f"{name:<22}{w['wal_bytes_per_task']:>8.0f}{w['fpi_per_task']:>7.2f}"
              f"{w['rows_written_per_task']:>7.1f}{w['pg_cpu_us_per_task']:>11.0f}"
              f"{w['py_cpu_us_per_task']:>11.0f}")
    print("  PG CPU: every process of the cluster (backends, WAL writer, ...) over enqueue +"
          " drain; py CPU: the worker process over its drain")


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone: run the section (or, in the peer venv, serve as the peer worker)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("command", nargs="?", default="bench", choices=["bench", "serve-peer"],
                   help=argparse.SUPPRESS)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                   or "postgresql://root@127.0.0.1:5432/postgres")
    p.add_argument("--quick", action="store_true", help="one rep of each, one hop rep")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    p.add_argument("--on-server", action="store_true",
                   help="use the given server rather than a private cluster")
    p.add_argument("--output", type=Path, default=OUT_DIR / "peers.json")
    args = p.parse_args(argv)
    if args.command == "serve-peer":
        return serve_peer(args.database_url, CONCURRENCY)
    sys.path.insert(0, str(HERE))
    sec = run_section(args.database_url, quick=args.quick, reps=args.reps,
                      on_server=args.on_server)
    print_section(sec)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(sec, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
