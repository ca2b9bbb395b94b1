"""Failover under load: kill the primary, promote its streaming replica, lose nothing.

Why: a primary that dies must not cost a user an acknowledged completion, nor make a task
complete twice, and the workers must find the new primary by themselves. This builds the pair
it needs (two clusters made with ``initdb``/``pg_basebackup`` in a temporary directory, on free
ports of 127.0.0.1), puts load on it, kills the primary with ``pg_ctl stop -m immediate`` (a
crash: no shutdown checkpoint, no goodbye to clients), promotes the replica, and checks.

Every client connects with one multi-host connection string,
``host=127.0.0.1,127.0.0.1 port=<primary>,<replica> target_session_attrs=read-write``: libpq
tries the hosts in order and keeps the first that accepts writes, so after the promotion the
same string reaches the new primary. The clients, each a process of its own:

* ``--drivers`` SQL drivers: loops of ``claim_tasks`` + ``complete_tasks`` that append every
  completion the server acknowledged (the commit returned, ``accepted = true``) to a log file,
  flushed before the next claim. These logs are the ground truth for "acknowledged".
* one ``Worker`` (the Python worker, with its own reconnect logic) on the same queue, and on
  a queue of its own whose runs are started only after the promotion (so they complete only
  if the worker reached the new primary by itself);
* one waiter: ``start_flow`` of a run before the crash, then ``wait_for_run`` across it;
* one ``execute()`` of a flow whose local step is held until after the promotion, so the
  caller's own claim, completion and wait all cross the failover.

Checks, on the new primary, after every run ended: every run completed; every acknowledged
(task, attempt) is there, completed under that attempt (a missing one is a LOST completion);
no task was acknowledged twice; the waiter saw its run complete. Reported besides: the time
from the kill to the first completion on the new primary, and the tasks whose handler ran
again because their completion was not acknowledged before the crash (at-least-once execution;
never two accepted completions).

Two modes: ``--sync on`` (``synchronous_standby_names = '*'``, ``synchronous_commit = on``:
a commit returns only once the replica has its WAL) and ``--sync off`` (asynchronous streaming:
a commit acknowledged in the last moments before the crash may be missing on the replica; the
run says how many were). Everything is removed at the end and checked (exit status 1 if a
cluster process or directory is left). Needs root (``initdb`` runs as the ``postgres`` user).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

BIN = Path("/usr/lib/postgresql/15/bin")
QUEUE = "failover"
FLOW = "failover_single"
#: A flow only the Python worker serves, started after the promotion: it completes only if the
#: worker found the new primary by itself.
WORKER_QUEUE = "failover_worker"
WORKER_FLOW = "failover_worker_only"
WORKER_RUNS = 50
OUT = Path(__file__).resolve().parent.parent / "build" / "bench" / "failover.json"


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def as_postgres(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a server binary as the ``postgres`` user (initdb and postgres refuse root)."""
    full = ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)
    done = subprocess.run(full, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


class Cluster:
    """One PostgreSQL cluster in a directory of its own, on a port of its own."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / name
        self.port = free_port()
        self.name = name

    def url(self, db: str = "postgres") -> str:
        """Return a connection string to this cluster alone."""
        return f"host=127.0.0.1 port={self.port} user=root dbname={db}"

    def init_primary(self, sync: bool) -> None:
        """initdb, with replication allowed from 127.0.0.1 and, if ``sync``, one sync standby."""
        as_postgres(str(BIN / "initdb"), "-D", str(self.dir), "-U", "root", "--auth=trust",
                    "--no-sync")
        with (self.dir / "postgresql.conf").open("a") as conf:
            conf.write(self._settings())
            if sync:
                conf.write("synchronous_standby_names = '*'\n")

    def init_replica(self, primary: Cluster) -> None:
        """Copy the primary with pg_basebackup (-R writes standby.signal and primary_conninfo)."""
        as_postgres(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                    "-U", "root", "-D", str(self.dir), "-R", "-X", "stream", "--no-sync")
        with (self.dir / "postgresql.conf").open("a") as conf:
            # The copy carries the primary's synchronous_standby_names. Promoted with it and no
            # standby of its own, every commit would wait forever for a standby: a new primary
            # starts without one (as pg_auto_failover does until a new standby joins).
            conf.write(f"port = {self.port}\nsynchronous_standby_names = ''\n")

    def _settings(self) -> str:
        return (f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir.parent}'\n"
                "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
                "fsync = on\nsynchronous_commit = on\nshared_buffers = 128MB\n"
                "max_connections = 60\nwal_keep_size = 256MB\n")

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        as_postgres(str(BIN / "pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log"),
                    "-w", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, clients cut off."""
        as_postgres(str(BIN / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop")

    def promote(self) -> None:
        """Promote a standby and wait until it accepts writes."""
        as_postgres(str(BIN / "pg_ctl"), "-D", str(self.dir), "-w", "promote")

    def stop(self) -> None:
        """Stop if running (used by the clean-up; never raises)."""
        with suppress(RuntimeError):
            as_postgres(str(BIN / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        """Tell whether a postmaster of this directory is alive."""
        pid_file = self.dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        pid = int(pid_file.read_text().split()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


# --- the client processes ----------------------------------------------------------------------


def connect_retrying(url: str, seconds: float = 60.0, stop_file: Path | None = None) -> Any:
    """Connect, retrying every 100 ms while no host accepts writes (during the failover)."""
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=2)
        except psycopg.OperationalError:
            if time.monotonic() > deadline or (stop_file is not None and stop_file.exists()):
                raise
            time.sleep(0.1)


def drive(url: str, log: Path, stop_file: Path) -> int:
    """Claim and complete (an SQL driver), logging each acknowledged completion, until stopped."""
    import psycopg
    from psycopg.types.json import Jsonb

    with log.open("a") as out:
        while not stop_file.exists():
            try:
                with connect_retrying(url, stop_file=stop_file) as conn:
                    while not stop_file.exists():
                        rows = conn.execute("select task_id, attempt from workflow.claim_tasks"
                                            "(%s, 10)", [QUEUE]).fetchall()
                        if not rows:
                            time.sleep(0.02)
                            continue
                        ids, attempts = [r[0] for r in rows], [r[1] for r in rows]
                        done = conn.execute(
                            "select task_id, accepted from workflow.complete_tasks"
                            "(%s::bigint[], %s::int[], %s::jsonb[])",
                            [ids, attempts, [Jsonb({"by": "driver"})] * len(ids)]).fetchall()
                        attempt_of = dict(zip(ids, attempts, strict=True))
                        # Written only now: the commit has returned, so this is acknowledged.
                        for task_id, accepted in done:
                            if accepted:
                                out.write(f"{task_id} {attempt_of[task_id]}\n")
                        out.flush()
            except psycopg.OperationalError:
                continue  # the server went away mid-call: whatever was not acknowledged is not
    return 0


def serve(url: str, stop_file: Path) -> int:
    """Serve the queue with a Python Worker until the stop file appears; print its stats."""
    from singularity_workflow import Worker

    define_flow()
    worker = Worker(url, queues=[QUEUE, WORKER_QUEUE], concurrency=10, poll_interval=0.5)
    worker.run_in_thread()
    while not stop_file.exists():
        time.sleep(0.1)
    worker.stop()
    worker.join(30)
    st = worker.stats
    print(json.dumps({"reconnects": st.reconnects if st else None,
                      "completed": st.completed if st else None}), flush=True)
    return 0


def wait(url: str, run_id: str, timeout: float) -> int:
    """Wait for a run started before the crash (the waiter); print how it ended."""
    from singularity_workflow import Client, wait_for_run

    t0 = time.monotonic()
    try:
        with Client(url) as client:
            status = wait_for_run(run_id, timeout=timeout, client=client)
        print(json.dumps({"status": str(status.status), "waited_s": round(time.monotonic() - t0,
                                                                           2)}), flush=True)
    except Exception as exc:  # reported, not hidden: the check fails on it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    return 0


def execute_through(url: str, gate: Path, timeout: float) -> int:
    """Call ``execute()`` on a flow whose local step is held until ``gate`` exists.

    The gate is made after the promotion, so the step's completion and the wait for the run
    both cross the failover.
    """
    from singularity_workflow import Client, execute, workflow_def

    def hold(input: dict[str, Any]) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while not Path(input["run"]["gate"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"by": "execute"}

    class Held:
        __workflow_slug__ = "failover_execute"
        __workflow_steps__ = [("hold", hold, {"timeout": int(timeout)})]

    t0 = time.monotonic()
    try:
        with Client(url) as client:
            result = execute(workflow_def(Held), {"gate": str(gate)}, timeout=timeout,
                             client=client)
        print(json.dumps({"status": "completed", "output": result.output,
                          "waited_s": round(time.monotonic() - t0, 2)}), flush=True)
    except Exception as exc:  # reported, not hidden: the check fails on it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    return 0


def noop(_input: Any) -> dict[str, str]:
    """Do nothing: the engine's bookkeeping is what is tested."""
    return {"by": "worker"}


def define_flow() -> list[Any]:
    """Return the two flows: one step on the shared queue, one on the worker's own."""
    from singularity_workflow import workflow_def

    class Flow:
        __workflow_slug__ = FLOW
        __workflow_steps__ = [("only", noop, {"execution": "distributed", "queue": QUEUE,
                                              "timeout": 5})]

    class WorkerOnly:
        __workflow_slug__ = WORKER_FLOW
        __workflow_steps__ = [("only", noop, {"execution": "distributed",
                                              "queue": WORKER_QUEUE, "timeout": 5})]

    return [workflow_def(Flow), workflow_def(WorkerOnly)]


# --- the scenario ------------------------------------------------------------------------------


def scenario(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build the pair, load it, crash the primary, promote, drain, check; return the findings."""
    import psycopg

    from singularity_workflow import Client, install

    primary, replica = Cluster(root, "primary"), Cluster(root, "replica")
    sync = args.sync == "on"
    primary.init_primary(sync)
    primary.start()
    replica.init_replica(primary)
    replica.start()
    both = (f"host=127.0.0.1,127.0.0.1 port={primary.port},{replica.port} user=root "
            "dbname=postgres target_session_attrs=read-write")
    me, procs = str(Path(__file__).resolve()), []
    stop_file = root / "stop"
    found: dict[str, Any] = {"sync": args.sync, "runs": args.runs}
    try:
        install(both)
        with Client(both) as client:
            for defn in define_flow():
                client.register_flow(defn)
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            state = conn.execute("select sync_state from pg_stat_replication").fetchall()
            found["replication"] = [s[0] for s in state]
            for first in range(0, args.runs, 200):
                conn.execute("select count(workflow.start_flow(%s, jsonb_build_object('i', g)))"
                             " from generate_series(%s::int, %s::int) as g",
                             [FLOW, first + 1, min(args.runs, first + 200)])
            waited_run = str(conn.execute("select workflow.start_flow(%s, '{}')",
                                          [FLOW]).fetchone()[0])
        logs = [root / f"driver{i}.log" for i in range(args.drivers)]
        procs += [subprocess.Popen([sys.executable, me, "drive", "--database-url", both, "--log",
                                    str(lg), "--stop-file", str(stop_file)]) for lg in logs]
        worker = subprocess.Popen([sys.executable, me, "serve", "--database-url", both,
                                   "--stop-file", str(stop_file)], stdout=subprocess.PIPE,
                                  text=True)
        waiter = subprocess.Popen([sys.executable, me, "wait", "--database-url", both,
                                   "--run-id", waited_run], stdout=subprocess.PIPE, text=True)
        gate = root / "promoted"
        executor = subprocess.Popen([sys.executable, me, "execute", "--database-url", both,
                                     "--stop-file", str(gate)], stdout=subprocess.PIPE,
                                    text=True)
        procs += [worker, waiter, executor]
        total = args.runs + 1
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            # The executor's local step must be running at the kill, so that its completion,
            # not only its wait, crosses the failover.
            while not conn.execute(
                    "select exists (select from workflow.tasks t join workflow.runs r using"
                    " (run_id) where r.flow_slug = 'failover_execute' and t.status = 'started')"
                    ).fetchone()[0]:
                time.sleep(0.01)
            while conn.execute("select count(*) from workflow.runs where flow_slug = %s"
                               " and status = 'completed'", [FLOW]).fetchone()[0] < (
                                   total * args.crash_at):
                time.sleep(0.01)
            before = conn.execute("select count(*) from workflow.tasks where status = "
                                  "'completed'").fetchone()[0]
        acked_before = sum(len(lg.read_text().split("\n")) - 1 for lg in logs if lg.exists())
        t_kill = time.monotonic()
        primary.crash()
        replica.promote()
        gate.touch()  # the executor's local step may finish now, on the new primary
        print(f"  killed the primary at {before} completed tasks; replica promoted", flush=True)
        found["completed_before_kill"] = before
        found["acked_by_drivers_before_kill"] = acked_before
        first_after = None
        with connect_retrying(both) as conn:
            start = conn.execute("select count(*) from workflow.tasks where status = "
                                 "'completed'").fetchone()[0]
            found["completed_on_replica_at_promotion"] = start
            conn.execute("select count(workflow.start_flow(%s, jsonb_build_object('i', g)))"
                         " from generate_series(1, %s) as g", [WORKER_FLOW, WORKER_RUNS])
            deadline = time.monotonic() + args.timeout
            while True:
                done = conn.execute("select count(*) filter (where status = 'completed'),"
                                    " count(*) filter (where status = 'failed')"
                                    " from workflow.runs where flow_slug = %s",
                                    [FLOW]).fetchone()
                if first_after is None and done[0] > start:
                    first_after = time.monotonic() - t_kill
                worker_done = conn.execute(
                    "select count(*) from workflow.runs where flow_slug = %s and status <>"
                    " 'started'", [WORKER_FLOW]).fetchone()[0]
                if (done[0] + done[1] >= total and worker_done >= WORKER_RUNS) or (
                        time.monotonic() > deadline):
                    break
                time.sleep(0.05)
            found["runs_completed"], found["runs_failed"] = done
            found["worker_only_runs_completed_after_promotion"] = conn.execute(
                "select count(*) from workflow.runs where flow_slug = %s and status ="
                " 'completed'", [WORKER_FLOW]).fetchone()[0]
            print(f"  drained: {done[0]} runs completed, {done[1]} failed", flush=True)
            found["kill_to_first_completion_s"] = (round(first_after, 2) if first_after
                                                   else None)
            stop_file.touch()
            for p in procs:
                p.wait(60)
            found["worker"] = json.loads(worker.stdout.read() or "{}") if worker.stdout else {}
            found["waiter"] = json.loads(waiter.stdout.read() or "{}") if waiter.stdout else {}
            found["execute"] = (json.loads(executor.stdout.read() or "{}") if executor.stdout
                                else {})
            acked: dict[int, list[int]] = {}
            for lg in logs:
                for line in lg.read_text().splitlines():
                    task_id, attempt = map(int, line.split())
                    acked.setdefault(task_id, []).append(attempt)
            rows = dict(conn.execute(
                "select task_id, attempts_count from workflow.tasks where status = 'completed'"
                " and output->>'by' = 'driver'").fetchall())
            found["acked_completions"] = sum(len(v) for v in acked.values())
            found["acked_twice"] = sum(1 for v in acked.values() if len(v) > 1)
            found["lost_acked_completions"] = sum(
                1 for t, v in acked.items() if rows.get(t) != v[0])
            found["rerun_tasks"] = conn.execute(
                "select count(*) from workflow.tasks where attempts_count > 1").fetchone()[0]
    finally:
        stop_file.touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        primary.stop()
        replica.stop()
    found["left_running"] = [c.name for c in (primary, replica) if c.running()]
    return found


def check(found: dict[str, Any]) -> list[str]:
    """Return what went wrong (empty: the scenario held its promises)."""
    bad = []
    if found["runs_completed"] != found["runs"] + 1:
        bad.append(f"{found['runs_completed']}/{found['runs'] + 1} runs completed")
    if found["sync"] == "on" and found["acked_twice"]:
        bad.append(f"{found['acked_twice']} tasks acknowledged twice")
    if found["sync"] == "on" and found["lost_acked_completions"]:
        bad.append(f"{found['lost_acked_completions']} acknowledged completions lost")
    if found.get("waiter", {}).get("status") != "completed":
        bad.append(f"the waiter: {found.get('waiter')}")
    if found["worker_only_runs_completed_after_promotion"] != WORKER_RUNS:
        bad.append(f"the worker completed {found['worker_only_runs_completed_after_promotion']}"
                   f"/{WORKER_RUNS} runs of its own queue after the promotion")
    if found.get("execute", {}).get("status") != "completed":
        bad.append(f"execute(): {found.get('execute')}")
    if found["left_running"]:
        bad.append(f"clusters left running: {found['left_running']}")
    return bad


def main(argv: Sequence[str] | None = None) -> int:
    """``bench`` (default) runs the scenario; ``drive``/``serve``/``wait`` are its clients."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="bench", choices=["bench", "drive", "serve",
                                                                "wait", "execute"])
    p.add_argument("--database-url")
    p.add_argument("--log", type=Path)
    p.add_argument("--stop-file", type=Path)
    p.add_argument("--run-id")
    p.add_argument("--sync", default="on,off", help="on, off, or both (on,off)")
    p.add_argument("--runs", type=int, default=3000)
    p.add_argument("--drivers", type=int, default=2)
    p.add_argument("--crash-at", type=float, default=0.3, help="share of runs done at the kill")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.mode == "drive":
        return drive(args.database_url, args.log, args.stop_file)
    if args.mode == "serve":
        return serve(args.database_url, args.stop_file)
    if args.mode == "execute":
        return execute_through(args.database_url, args.stop_file, args.timeout)
    if args.mode == "wait":
        return wait(args.database_url, args.run_id, args.timeout)
    if os.geteuid() != 0 and shutil.which("runuser") is None:
        print("failover needs root (initdb runs as the postgres user); skipped", file=sys.stderr)
        return 2
    # A SIGTERM (a timeout, a kill) unwinds through the clean-up instead of skipping it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results, status = [], 0
    for mode in args.sync.split(","):
        root = Path(tempfile.mkdtemp(prefix="sw_failover_"))
        shutil.chown(root, "postgres")
        try:
            found = scenario(root, argparse.Namespace(**{**vars(args), "sync": mode.strip()}))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        found["dir_left"] = root.exists()
        found["problems"] = check(found) + (["directory left behind"] if root.exists() else [])
        status |= bool(found["problems"])
        results.append(found)
        print_row(found)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return status


def print_row(f: dict[str, Any]) -> None:
    """One scenario's findings, as a few lines a person reads."""
    print(f"failover, synchronous replication {f['sync']} ({f['runs'] + 1} one-step runs, "
          f"killed at {f['completed_before_kill']} completed tasks):")
    print(f"  runs completed {f['runs_completed']}, failed {f['runs_failed']}; kill -> first "
          f"completion on the new primary {f['kill_to_first_completion_s']} s")
    print(f"  acknowledged completions {f['acked_completions']}, lost "
          f"{f['lost_acked_completions']}, acknowledged twice {f['acked_twice']}; tasks whose "
          f"handler ran again (unacknowledged at the crash) {f['rerun_tasks']}")
    print(f"  worker: reconnects {f['worker'].get('reconnects')}, runs of its own queue done"
          f" after the promotion {f['worker_only_runs_completed_after_promotion']}/{WORKER_RUNS};"
          f" wait_for_run {f['waiter']};"
          f" execute() {f['execute']}")
    print("  " + ("OK" if not f["problems"] else "PROBLEMS: " + "; ".join(f["problems"])))


if __name__ == "__main__":
    sys.exit(main())
