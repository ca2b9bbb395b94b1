"""The chaos scenarios, parameterised by size, shared by the short and the long suites.

``tests/python/test_chaos.py`` runs each scenario small enough for ``make test`` (about 20 s
each); ``tests/chaos/test_chaos_long.py`` runs them at full size under ``make chaos``. Everything
is real: worker processes started with the ``singularity-workflow worker`` command, killed with
SIGKILL; backends ended with ``pg_terminate_backend``; locks held by other sessions. Only local
addresses are used, and every wait is bounded.

How "no task lost, none completed twice" is checked, from the tables and not from the workers:

* lost: every run is ``completed`` with the output its input implies, every task is
  ``completed``, and no message is left in the queues;
* twice: the engine records ``step_completed`` once per step and ``run_completed`` once per run
  in ``workflow.events``, in the transaction that accepts the completion, so a completion
  accepted twice would show as a second event (or as a map output with a wrong length, or a
  counter driven below zero, which a check constraint refuses);
* handlers append one line per execution to a log file (``O_APPEND`` writes, which survive
  SIGKILL), so each task ran at least once and never more often than it was claimed;
* extra attempts are accounted for by the kills: after each kill, once the victim's backends are
  gone, the tasks still ``started`` under its worker id are its orphans. Every attempt beyond
  the first must be the re-claim of exactly one orphan, and every orphan must be re-claimed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.fixtures import import_file

REPO = Path(__file__).resolve().parents[2]
QUEUE = "chaos_q"

#: The flows under test, written into a module the worker processes import. Leases are 3 s
#: (renewed every 1.5 s) so a busy two-core machine never lets a live worker's lease lapse (that
#: would be an extra attempt no kill explains); attempts are plenty, so repeated kills of the
#: same task cannot exhaust them.
FLOWS = '''
import os
import time

from singularity_workflow import Workflow, step

SLEEP = float(os.environ.get("CHAOS_SLEEP", "0.01"))
_LOG = os.environ.get("CHAOS_LOG")
_FD = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if _LOG else None


def note(flow, step, k, i):
    """Record one execution: one write of one line, atomic with O_APPEND."""
    if _FD is not None:
        os.write(_FD, f"{flow} {step} {k} {i}\\n".encode())


OPTS = dict(execution="distributed", queue="chaos_q", timeout=3, max_attempts=20)


class ChaosMap(Workflow):
    slug = "chaos.map"

    @step(**OPTS)
    def src(self, input):
        run = input["run"]
        note("map", "src", run["k"], 0)
        return [{"k": run["k"], "i": i} for i in range(run["n"])]

    @step(map=True, depends_on=["src"], **OPTS)
    def each(self, item):
        time.sleep(SLEEP)
        note("map", "each", item["k"], item["i"])
        return item["i"] * 2

    @step(depends_on=["each"], **OPTS)
    def total(self, input):
        note("map", "total", input["run"]["k"], 0)
        return sum(input["each"])


class ChaosDiamond(Workflow):
    slug = "chaos.diamond"

    @step(**OPTS)
    def a(self, input):
        k = input["run"]["k"]
        note("diamond", "a", k, 0)
        return [{"k": k, "i": 0}, {"k": k, "i": 1}]

    @step(map=True, depends_on=["a"], **OPTS)
    def left(self, item):
        time.sleep(SLEEP)
        note("diamond", "left", item["k"], item["i"])
        return item["i"] + 1

    @step(depends_on=["a"], **OPTS)
    def right(self, input):
        time.sleep(SLEEP)
        note("diamond", "right", input["run"]["k"], 0)
        return 10

    @step(depends_on=["left", "right"], **OPTS)
    def join(self, input):
        note("diamond", "join", input["run"]["k"], 0)
        return sum(input["left"]) + input["right"]


class ChaosGate(Workflow):
    """One task that runs until a file exists: work in flight at a moment the test chooses."""

    slug = "chaos.gate"

    @step(execution="distributed", queue="chaos_q", timeout=3, max_attempts=20)
    def wait(self, input):
        gate = input["run"]["gate"]
        while not os.path.exists(gate):
            time.sleep(0.02)
        note("gate", "wait", input["run"]["k"], 0)
        return "opened"


class ChaosBlocking(Workflow):
    """Handlers that block their thread for 7 s, three ways, within their 12 s timeout.

    The timeout bounds an attempt (past it the attempt fails), so the block stays inside it; the
    lease is renewed at half the timeout (6 s), while the handlers block.
    """

    slug = "chaos.blocking"

    @step(execution="distributed", queue="chaos_q", timeout=12, max_attempts=5)
    def sleeps(self, input):
        time.sleep(input["run"]["seconds"])
        note("blocking", "sleeps", 0, 0)
        return "slept"

    @step(execution="distributed", queue="chaos_q", timeout=12, max_attempts=5)
    def hashes(self, input):
        # One C call that releases the GIL while it runs (OpenSSL's PBKDF2).
        import hashlib
        hashlib.pbkdf2_hmac("sha256", b"password", b"salt", input["run"]["iterations"])
        note("blocking", "hashes", 0, 0)
        return "hashed"

    @step(execution="distributed", queue="chaos_q", timeout=12, max_attempts=5)
    def spins(self, input):
        # C calls that hold the GIL (the regex engine never releases it), each about 20 ms (a
        # typical numerical kernel), back to back for longer than the lease: the lease thread
        # gets the GIL between two of them. (One C call holding the GIL for longer than the
        # lease cannot be survived by a thread of the same process; that is documented.)
        import re
        end = time.monotonic() + input["run"]["seconds"]
        while time.monotonic() < end:
            re.match(r"(a|aa)+$", "a" * input["run"]["regex_n"] + "b")
        note("blocking", "spins", 0, 0)
        return "spun"


class ChaosLocal(Workflow):
    """Run by execute() in the test process: local steps, served by the waiting caller."""

    slug = "chaos.local"

    @step(timeout=3, max_attempts=20)
    def start(self, input):
        return list(range(input["run"]["n"]))

    @step(map=True, depends_on=["start"], timeout=3, max_attempts=20)
    def work(self, item):
        time.sleep(SLEEP)
        return item + 1

    @step(depends_on=["work"], timeout=3, max_attempts=20)
    def done(self, input):
        return sum(input["work"])
'''

#: Tasks per run: map runs have src + n + total; diamonds a + 2 + right + join.
DIAMOND_TASKS = 5


def write_flows(directory: Path) -> None:
    """Write the flows module (``chaos_flows``) into ``directory``."""
    (directory / "chaos_flows.py").write_text(textwrap.dedent(FLOWS))


def import_flows(directory: Path) -> Any:
    """Import the flows module in this process (to register flows and call execute)."""
    loaded = sys.modules.get("chaos_flows")
    if loaded is not None and Path(loaded.__file__ or "").parent == directory:
        return loaded
    return import_file(directory / "chaos_flows.py")


@dataclass
class Load:
    """The runs of one scenario: which flow, which input, what output they must end with."""

    runs: dict[Any, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def tasks(self) -> int:
        """How many tasks the runs make in all."""
        return sum(n["n"] + 2 if f == "chaos.map" else DIAMOND_TASKS for f, n in self.runs.values())


def expected_output(flow: str, run_input: dict[str, Any]) -> dict[str, Any]:
    """Return the output a run of ``flow`` on ``run_input`` must end with."""
    if flow == "chaos.map":
        return {"total": sum(2 * i for i in range(run_input["n"]))}
    return {"join": 1 + 2 + 10}


def start_load(conn: psycopg.Connection[Any], tasks: int, map_size: int = 50) -> Load:
    """Start runs making about ``tasks`` tasks: half in map runs of ``map_size``, half diamonds.

    Started in one transaction, so the workers see the whole load at once.
    """
    load = Load()
    n_map = max(1, tasks // 2 // (map_size + 2))
    n_diamond = max(1, (tasks - n_map * (map_size + 2)) // DIAMOND_TASKS)
    with conn.transaction():
        for k in range(n_map + n_diamond):
            flow = "chaos.map" if k < n_map else "chaos.diamond"
            run_input = {"k": k, "n": map_size} if flow == "chaos.map" else {"k": k}
            row = conn.execute(
                "select workflow.start_flow(%s, %s::jsonb)", [flow, Jsonb(run_input)]
            ).fetchone()
            assert row is not None
            load.runs[row[0]] = (flow, run_input)
    return load


class WorkerPool:
    """Worker processes on the chaos queue, each with a unique worker id and application_name."""

    def __init__(self, db_url: str, directory: Path, log: Path, *, concurrency: int = 8,
                 sleep: float = 0.01) -> None:
        self.db_url = db_url
        self.directory = directory
        self.log = log
        self.concurrency = concurrency
        self.sleep = sleep
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.outputs: dict[str, Path] = {}
        self._n = 0

    def spawn(self) -> str:
        """Start one more worker process; return its worker id."""
        self._n += 1
        wid = f"chaos-{self._n}"
        env = dict(
            os.environ,
            CHAOS_LOG=str(self.log),
            CHAOS_SLEEP=str(self.sleep),
            PGAPPNAME=wid,  # libpq names every connection of the process: how we find them
            PYTHONPATH=os.pathsep.join([str(self.directory), str(REPO / "python")]),
        )
        out = self.directory / f"{wid}.log"
        self.outputs[wid] = out
        with out.open("wb") as fh:
            self.procs[wid] = subprocess.Popen(
                [sys.executable, "-m", "singularity_workflow", "--database-url", self.db_url,
                 "worker", "-q", QUEUE, "-i", "chaos_flows", "--worker-id", wid,
                 "--concurrency", str(self.concurrency), "--poll-interval", "0.5",
                 "--shutdown-grace", "10"],
                env=env, stdout=fh, stderr=subprocess.STDOUT,
            )
        return wid

    def alive(self) -> list[str]:
        """Return the ids of the workers still running."""
        return [w for w, p in self.procs.items() if p.poll() is None]

    def output(self, wid: str) -> str:
        """Return what a worker wrote to its stdout and stderr."""
        return self.outputs[wid].read_text(errors="replace")

    def stop_all(self, timeout: float = 30) -> dict[str, int | None]:
        """SIGTERM every live worker, wait for the graceful shutdowns; return the exit codes.

        A worker spawned moments ago may still be importing, before it installs its signal
        handlers; a SIGTERM then ends it like any process (-15), which says nothing about its
        shutdown. So each live worker is first given until ``timeout`` to log that it serves.
        """
        deadline = time.monotonic() + timeout
        for wid, p in self.procs.items():
            while (p.poll() is None and "serving queues" not in self.output(wid)
                   and time.monotonic() < deadline):
                time.sleep(0.05)
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for wid, p in self.procs.items():
            try:
                codes[wid] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[wid] = None
        return codes

    def kill_all(self) -> None:
        """SIGKILL whatever is left (clean-up; never part of a check)."""
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def backends_of(conn: psycopg.Connection[Any], app_name: str) -> int:
    """Return how many server backends the connections named ``app_name`` still have."""
    row = conn.execute(
        "select count(*) from pg_stat_activity where application_name = %s", [app_name]
    ).fetchone()
    return int(row[0]) if row else 0


def kill_one(pool: WorkerPool, conn: psycopg.Connection[Any], victim: str,
             orphans: list[tuple[int, int]]) -> None:
    """SIGKILL worker ``victim`` and record its orphaned (task, attempt) pairs.

    The orphans are read once the victim's backends have gone (a statement it sent before dying
    has then committed or rolled back), and well within the 3 s lease, so no rescuer has
    re-claimed them yet.
    """
    pool.procs[victim].send_signal(signal.SIGKILL)
    pool.procs[victim].wait(10)
    deadline = time.monotonic() + 10
    while backends_of(conn, victim):
        assert time.monotonic() < deadline, f"the backends of {victim} did not go away"
        time.sleep(0.01)
    rows = conn.execute(
        "select task_id, attempts_count from workflow.tasks"
        " where status = 'started' and worker_id = %s", [victim]
    ).fetchall()
    orphans.extend((int(t), int(a)) for t, a in rows)


def wait_for_runs(conn: psycopg.Connection[Any], load: Load, timeout: float,
                  pool: WorkerPool | None = None) -> None:
    """Wait until no run of ``load`` is started (bounded by ``timeout`` seconds)."""
    ids = list(load.runs)
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(
            "select count(*) from workflow.runs where run_id = any(%s) and status = 'started'",
            [ids],
        ).fetchone()
        if row is not None and row[0] == 0:
            return
        if time.monotonic() > deadline:
            details = ""
            if pool is not None:
                details = "\n".join(f"--- {w}\n{pool.output(w)[-3000:]}" for w in pool.alive())
            raise AssertionError(f"{row[0] if row else '?'} run(s) still started after {timeout} s"
                                 f"\n{details}")
        time.sleep(0.1)


@dataclass
class Audit:
    """What the tables say after a scenario."""

    runs: int
    tasks: int
    extra_attempts: int
    executions: int
    double_completions: int
    lost: int


def audit(conn: psycopg.Connection[Any], load: Load, log: Path | None = None,
          orphans: list[tuple[int, int]] | None = None) -> Audit:
    """Check every run, task, event and handler execution of ``load``; return the figures.

    Raises AssertionError on any lost task, double completion or unexplained attempt.
    """
    ids = list(load.runs)
    runs = conn.execute(
        "select run_id, status, output from workflow.runs where run_id = any(%s)", [ids]
    ).fetchall()
    assert len(runs) == len(ids)
    wrong = [(r, s, o) for r, s, o in runs
             if s != "completed" or o != expected_output(*load.runs[r])]
    assert not wrong, f"{len(wrong)} run(s) not completed with the right output: {wrong[:3]}"

    tasks = conn.execute(
        "select task_id, run_id, step_slug, task_index, status, attempts_count"
        " from workflow.tasks where run_id = any(%s)", [ids]
    ).fetchall()
    lost = [t for t in tasks if t[4] != "completed"]
    assert len(tasks) == load.tasks, f"{len(tasks)} tasks, expected {load.tasks}"
    assert not lost, f"tasks not completed: {lost[:5]}"
    row = conn.execute(f"select count(*) from pgmq.q_{QUEUE}").fetchone()
    assert row == (0,), f"messages left in the queue: {row}"

    # Completions accepted twice would show as a second step_completed / run_completed event.
    doubles = conn.execute(
        "select run_id, step_slug, event, count(*) from workflow.events"
        " where run_id = any(%s) and event in ('step_completed', 'run_completed')"
        " group by 1, 2, 3 having count(*) > 1", [ids]
    ).fetchall()
    assert not doubles, f"completions recorded twice: {doubles[:5]}"
    row = conn.execute(
        "select count(*) from workflow.events where run_id = any(%s) and event = 'step_completed'",
        [ids],
    ).fetchone()
    steps = sum(3 if f == "chaos.map" else 4 for f, _ in load.runs.values())
    assert row == (steps,), f"{row} step completions, expected {steps}"

    extra = sum(t[5] - 1 for t in tasks)
    if orphans is not None:
        attempts = {t[0]: t[5] for t in tasks}
        orphan_set = set(orphans)
        assert len(orphan_set) == len(orphans), "an orphan was recorded twice"
        unclaimed = [o for o in orphans if o[0] in attempts and attempts[o[0]] <= o[1]]
        assert not unclaimed, f"orphans never claimed again: {unclaimed[:5]}"
        # Every attempt beyond the first re-claims exactly one orphan of a kill.
        unexplained = [(t, a) for t, n in attempts.items() for a in range(1, n)
                       if (t, a) not in orphan_set]
        assert not unexplained, (f"{len(unexplained)} extra attempt(s) no kill explains:"
                                 f" {unexplained[:5]}")
        assert extra == len(orphans)

    executions = 0
    if log is not None:
        key_of_task = {}
        for _task_id, run_id, step_slug, task_index, _s, n in tasks:
            flow, run_input = load.runs[run_id]
            key_of_task[(flow.split(".")[1], step_slug, run_input["k"], task_index)] = n
        counts: Counter[tuple[str, str, int, int]] = Counter()
        for line in log.read_text().splitlines():
            flow, step_name, k, i = line.split()
            counts[(flow, step_name, int(k), int(i))] += 1
        executions = sum(counts[key] for key in key_of_task)
        never = [key for key in key_of_task if counts[key] == 0]
        assert not never, f"tasks that never ran: {never[:5]}"
        too_often = [(key, counts[key], n) for key, n in key_of_task.items() if counts[key] > n]
        assert not too_often, f"tasks run more often than claimed: {too_often[:5]}"
    return Audit(runs=len(runs), tasks=len(tasks), extra_attempts=extra, executions=executions,
                 double_completions=len(doubles), lost=len(lost))


def terminate_backends(conn: psycopg.Connection[Any]) -> int:
    """End every backend of this database except our own; return how many were ended."""
    row = conn.execute(
        "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid()"
    ).fetchone()
    return int(row[0]) if row else 0


def postgres_is_up(url: str) -> bool:
    """Tell whether the server accepts connections."""
    try:
        with psycopg.connect(url, connect_timeout=2) as c:
            c.execute("select 1")
        return True
    except psycopg.OperationalError:
        return False
