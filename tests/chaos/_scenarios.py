"""The four chaos scenarios as functions of their size (see ``_harness`` for the checks).

Each returns the figures a closing note reports; each raises AssertionError when the engine lost
a task, completed one twice, hung, or could not explain an attempt.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from singularity_workflow import Client, execute
from tests.chaos._harness import (
    QUEUE,
    Audit,
    WorkerPool,
    audit,
    backends_of,
    import_flows,
    kill_one,
    postgres_is_up,
    start_load,
    terminate_backends,
    wait_for_runs,
    write_flows,
)


def _setup(db_url: str, directory: Path) -> Any:
    """Write and import the flows, and register them."""
    write_flows(directory)
    flows = import_flows(directory)
    with Client(db_url) as client:
        for wf in (flows.ChaosMap, flows.ChaosDiamond, flows.ChaosGate, flows.ChaosBlocking):
            client.register_flow(wf)
    return flows


def _completed(conn: psycopg.Connection[Any], run_ids: list[UUID]) -> int:
    row = conn.execute(
        "select count(*) from workflow.tasks where run_id = any(%s) and status = 'completed'",
        [run_ids],
    ).fetchone()
    return int(row[0]) if row else 0


def _wait_progress(conn: psycopg.Connection[Any], run_ids: list[UUID], target: int,
                   deadline: float, pool: WorkerPool) -> None:
    """Wait until ``target`` tasks of the runs completed (bounded by ``deadline``)."""
    while _completed(conn, run_ids) < target:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no progress: {_completed(conn, run_ids)} of {target} tasks completed;"
                + "".join(f"\n--- {w}\n{pool.output(w)[-2000:]}" for w in pool.alive()))
        time.sleep(0.02)


# ------------------------------------------------------------------------------------------------
# 1. SIGKILL a random worker many times during a load
# ------------------------------------------------------------------------------------------------


@dataclass
class KillFigures:
    """What the kill storm did and what the audit found."""

    kills: int
    orphans: int
    audit: Audit
    seconds: float


def kill_storm(db_url: str, directory: Path, *, tasks: int, kills: int, workers: int = 3,
               rng_seed: int = 1, timeout: float = 120) -> KillFigures:
    """Run ``tasks`` tasks on ``workers`` processes and SIGKILL one ``kills`` times.

    Kills are spread over the load by progress (kill j once j/(kills+1) of the tasks completed),
    so they all land while work is in flight; each victim is replaced at once. The victim is
    chosen among the workers holding tasks (else any), so most kills orphan something.
    """
    _setup(db_url, directory)
    log = directory / "executions.log"
    pool = WorkerPool(db_url, directory, log)
    rng = random.Random(rng_seed)
    orphans: list[tuple[int, int]] = []
    started = time.monotonic()
    deadline = started + timeout
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            load = start_load(conn, tasks)
            ids = list(load.runs)
            for _ in range(workers):
                pool.spawn()
            for j in range(1, kills + 1):
                _wait_progress(conn, ids, load.tasks * j // (kills + 1), deadline, pool)
                busy = {r[0] for r in conn.execute(
                    "select distinct worker_id from workflow.tasks where status = 'started'"
                    " and run_id = any(%s)", [ids]).fetchall()}
                candidates = [w for w in pool.alive() if w in busy] or pool.alive()
                kill_one(pool, conn, rng.choice(candidates), orphans)
                pool.spawn()
            wait_for_runs(conn, load, max(5.0, deadline - time.monotonic()), pool)
            codes = pool.stop_all()
            assert all(c == 0 for w, c in codes.items() if pool.procs[w].returncode != -9), codes
            figures = audit(conn, load, log, orphans)
    finally:
        pool.kill_all()
    return KillFigures(kills=kills, orphans=len(orphans), audit=figures,
                       seconds=time.monotonic() - started)


# ------------------------------------------------------------------------------------------------
# 2. Every backend terminated (or the server restarted) mid-load
# ------------------------------------------------------------------------------------------------


@dataclass
class OutageFigures:
    """How many outages the load went through, and what the audit found."""

    terminations: int
    backends_ended: int
    restarts: int
    audit: Audit
    execute_output: Any


def restart_postgres() -> None:
    """Restart the local PostgreSQL 15 cluster (root only; the caller checks it comes back)."""
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"],
                   check=True, timeout=120, capture_output=True)


def ensure_postgres_running(url: str) -> None:
    """Start the cluster if it is not accepting connections (whatever a scenario did)."""
    if postgres_is_up(url):
        return
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"],
                   check=False, timeout=120, capture_output=True)
    deadline = time.monotonic() + 60
    while not postgres_is_up(url):
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not come back")
        time.sleep(0.5)


def outages(db_url: str, directory: Path, *, tasks: int, terminations: int, restarts: int = 0,
            workers: int = 3, timeout: float = 120) -> OutageFigures:
    """Run a load on worker processes and an ``execute`` in this process through outages.

    ``terminations`` times, spread over the load, every backend of the database but ours is
    ended with pg_terminate_backend; then ``restarts`` times the server itself is restarted.
    Workers and the waiting execute must reconnect and finish everything.
    """
    flows = _setup(db_url, directory)
    log = directory / "executions.log"
    pool = WorkerPool(db_url, directory, log)
    result: dict[str, Any] = {}

    def run_execute() -> None:
        try:
            with Client(db_url) as client:
                result["output"] = execute(flows.ChaosLocal, {"n": 40}, client=client,
                                           timeout=timeout).output
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    ended = 0
    events = terminations + restarts
    deadline = time.monotonic() + timeout
    try:
        conn = psycopg.connect(db_url, autocommit=True)
        load = start_load(conn, tasks)
        ids = list(load.runs)
        for _ in range(workers):
            pool.spawn()
        waiter = threading.Thread(target=run_execute, daemon=True)
        waiter.start()
        for j in range(1, events + 1):
            _wait_progress(conn, ids, load.tasks * j // (events + 1), deadline, pool)
            if j <= terminations:
                ended += terminate_backends(conn)
            else:
                conn.close()
                try:
                    restart_postgres()
                finally:
                    ensure_postgres_running(db_url)
                conn = psycopg.connect(db_url, autocommit=True)
        wait_for_runs(conn, load, max(5.0, deadline - time.monotonic()), pool)
        waiter.join(max(5.0, deadline - time.monotonic()))
        assert not waiter.is_alive(), "execute did not return"
        assert "error" not in result, f"execute failed: {result.get('error')!r}"
        assert result["output"] == {"done": sum(i + 1 for i in range(40))}
        assert len(pool.alive()) == workers, "a worker process died instead of reconnecting"
        codes = pool.stop_all()
        assert all(c == 0 for c in codes.values()), codes
        reconnected = [w for w in pool.procs if "reconnected to the database" in pool.output(w)]
        assert len(reconnected) == workers, "every worker reconnected at least once"
        figures = audit(conn, load, log)
        conn.close()
    finally:
        pool.kill_all()
        if restarts:
            ensure_postgres_running(db_url)
    return OutageFigures(terminations=terminations, backends_ended=ended, restarts=restarts,
                         audit=figures, execute_output=result.get("output"))


# ------------------------------------------------------------------------------------------------
# 3. A session idle in transaction holding a run's row, and a long transaction elsewhere
# ------------------------------------------------------------------------------------------------


@dataclass
class LockFigures:
    """How the workers fared while another session held locks."""

    other_runs: int
    seconds_to_serve_others: float
    shutdown_seconds: float


def lock_holders(db_url: str, directory: Path, *, tasks: int, in_flight: bool,
                 timeout: float = 60) -> LockFigures:
    """Hold a run's row from an idle session and keep a long transaction open; serve others.

    The run's row is locked FOR UPDATE by a session left idle in transaction, and a repeatable
    read transaction stays open elsewhere, while two worker processes serve a load of other runs.
    With ``in_flight`` the held run has a task running on a worker when the lock is taken, which
    then tries to complete it (its completion must wait for the lock). Checks: every other run
    completes while the locks are held, the workers shut down on SIGTERM within their grace,
    and once the locks are gone the held run completes too, each task once.
    """
    _setup(db_url, directory)
    log = directory / "executions.log"
    gate = directory / "gate"
    pool = WorkerPool(db_url, directory, log)
    holder = psycopg.connect(db_url)  # not autocommit: its transaction stays open
    long_tx = psycopg.connect(db_url)
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            held = conn.execute(
                "select workflow.start_flow('chaos.gate', %s)",
                [Jsonb({"gate": str(gate), "k": 0})],
            ).fetchone()[0]  # type: ignore[index]
            if in_flight:
                for _ in range(2):
                    pool.spawn()
                deadline = time.monotonic() + 20
                while conn.execute("select status from workflow.tasks where run_id = %s",
                                   [held]).fetchone() != ("started",):
                    assert time.monotonic() < deadline, "the gate task was never claimed"
                    time.sleep(0.02)
            # The lock holder goes idle in transaction; the long transaction keeps a snapshot.
            holder.execute("select run_id from workflow.runs where run_id = %s for update", [held])
            long_tx.execute("set transaction isolation level repeatable read")
            long_tx.execute("select count(*) from workflow.tasks").fetchone()
            gate.touch()  # an in-flight handler now returns and its completion meets the lock
            load = start_load(conn, tasks)
            if not in_flight:
                for _ in range(2):
                    pool.spawn()
            t0 = time.monotonic()
            wait_for_runs(conn, load, timeout, pool)
            served = time.monotonic() - t0
            row = conn.execute("select status from workflow.runs where run_id = %s",
                               [held]).fetchone()
            assert row == ("started",), "the held run cannot have moved"
            states = conn.execute(
                "select state, wait_event_type from pg_stat_activity where datname ="
                " current_database() and application_name like 'chaos-%%' and state <> 'idle'"
            ).fetchall()
            t1 = time.monotonic()
            codes = pool.stop_all(timeout=15)
            shutdown = time.monotonic() - t1
            assert all(c == 0 for c in codes.values()), (
                f"a worker did not shut down while the lock was held: {codes} {states}"
                + "".join(f"\n--- {w}\n{pool.output(w)[-2000:]}" for w in pool.procs))
            holder.rollback()
            long_tx.rollback()
            # A backend lingers a moment after its client process exits: wait for it to go.
            gone_by = time.monotonic() + 5
            while backends_of(conn, "chaos-1") and time.monotonic() < gone_by:
                time.sleep(0.05)
            assert backends_of(conn, "chaos-1") == 0
            # With the locks gone a new worker finishes the held run; its task ran once unless
            # a stopped worker's lease had to lapse first (then twice, with two attempts).
            pool.spawn()
            wait_for_runs(conn, _one(held), 30, pool)
            row = conn.execute("select status, output from workflow.runs where run_id = %s",
                               [held]).fetchone()
            assert row == ("completed", {"wait": "opened"})
            pool.stop_all()
            audit(conn, load, log)
    finally:
        holder.close()
        long_tx.close()
        pool.kill_all()
    return LockFigures(other_runs=len(load.runs), seconds_to_serve_others=served,
                       shutdown_seconds=shutdown)


def _one(run_id: UUID) -> Any:
    from tests.chaos._harness import Load

    return Load(runs={run_id: ("chaos.gate", {})})


# ------------------------------------------------------------------------------------------------
# 4. Handlers that block their thread longer than the lease
# ------------------------------------------------------------------------------------------------


def _calibrate_pbkdf2(seconds: float) -> int:
    import hashlib

    n = 20_000
    t = time.perf_counter()
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", n)
    per = (time.perf_counter() - t) / n
    return max(n, int(seconds / per))


def _calibrate_regex(target: float = 0.02) -> int:
    """Return n such that one match of ``(a|aa)+$`` on 'a'*n + 'b' takes about ``target`` s."""
    import re

    n = 18
    while True:
        t = time.perf_counter()
        re.match(r"(a|aa)+$", "a" * n + "b")
        if time.perf_counter() - t >= target / 2 or n > 40:
            return n
        n += 1


@dataclass
class BlockingFigures:
    """Attempts and executions of each blocking handler."""

    attempts: dict[str, int]
    executions: dict[str, int]
    renewals_needed: float


def blocking_handlers(db_url: str, directory: Path, *, seconds: float = 7.0) -> BlockingFigures:
    """Run handlers that block for ``seconds`` (past their lease's renewal, within their 12 s
    timeout) on two workers.

    The second worker is idle and polling: if a lease lapsed it would claim the task again as
    attempt 2. Each task must have run once, with one attempt.
    """
    _setup(db_url, directory)
    log = directory / "executions.log"
    pool = WorkerPool(db_url, directory, log)
    run_input = {"seconds": seconds, "iterations": _calibrate_pbkdf2(seconds),
                 "regex_n": _calibrate_regex()}
    try:
        for _ in range(2):
            pool.spawn()
        with psycopg.connect(db_url, autocommit=True) as conn:
            run_id = conn.execute("select workflow.start_flow('chaos.blocking', %s)",
                                  [Jsonb(run_input)]).fetchone()[0]  # type: ignore[index]
            wait_for_runs(conn, _blocking(run_id), seconds * 10 + 20, pool)
            rows = conn.execute(
                "select step_slug, status, attempts_count from workflow.tasks where run_id = %s",
                [run_id]).fetchall()
            status = conn.execute("select status from workflow.runs where run_id = %s",
                                  [run_id]).fetchone()
        pool.stop_all()
        executions = {s: 0 for s in ("sleeps", "hashes", "spins")}
        for line in log.read_text().splitlines():
            executions[line.split()[1]] += 1
        attempts = {r[0]: r[2] for r in rows}
        assert status == ("completed",), (rows, [pool.output(w)[-2000:] for w in pool.procs])
        assert attempts == {"sleeps": 1, "hashes": 1, "spins": 1}, (
            attempts, [pool.output(w)[-2000:] for w in pool.procs])
        assert executions == {"sleeps": 1, "hashes": 1, "spins": 1}, executions
    finally:
        pool.kill_all()
    return BlockingFigures(attempts=attempts, executions=executions, renewals_needed=seconds / 6)


def _blocking(run_id: UUID) -> Any:
    from tests.chaos._harness import Load

    return Load(runs={run_id: ("chaos.blocking", {})})


__all__ = ["QUEUE", "blocking_handlers", "kill_storm", "lock_holders", "outages"]
