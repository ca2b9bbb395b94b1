"""A Worker behind pgbouncer in transaction mode completes workflows.

pgbouncer (Debian's package; ``scripts/test.sh`` installs it) runs on a free local port in
transaction mode in front of the test database. The worker's claim/complete and lease connections
go through it with prepared statements off (pgbouncer before 1.21 cannot carry them across
server connections); its LISTEN connection goes straight to PostgreSQL (``listen_database``),
because a transaction-mode bouncer hands each transaction to any server connection and a LISTEN
would be lost. The poll interval is far longer than the test, so finishing in time needs the
notifications. pgbouncer's own statistics prove the work went through it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from singularity_workflow import Client, Worker, Workflow, step

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
)


class BouncedDiamond(Workflow):
    """A diamond with a map in one branch, every step on the bounced queue."""

    slug = "test_pgbouncer.diamond"

    @step(execution="distributed", queue="bounced", timeout=5)
    def source(self, input: dict[str, Any]) -> list[int]:
        """Return the numbers 0..n-1."""
        return list(range(input["run"]["n"]))

    @step(map=True, depends_on=["source"], execution="distributed", queue="bounced", timeout=5)
    def square(self, item: int) -> int:
        """Square one element."""
        return item * item

    @step(depends_on=["source"], execution="distributed", queue="bounced", timeout=5)
    def count(self, input: dict[str, Any]) -> int:
        """Count them (the other branch of the diamond)."""
        return len(input["source"])

    @step(depends_on=["square", "count"], execution="distributed", queue="bounced", timeout=5)
    def join(self, input: dict[str, Any]) -> dict[str, int]:
        """Join the branches."""
        return {"sum": sum(input["square"]), "count": input["count"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bouncer(db_url: str) -> Iterator[str]:
    """Run pgbouncer in transaction mode in front of the test database; yield its URL."""
    # Its own directory rather than tmp_path: pgbouncer drops root for another user, who must
    # still read its files and write its log, and pytest's directories are private to root.
    tmp_path = Path(tempfile.mkdtemp(prefix="sw_pgbouncer_"))
    try:
        yield from _run_bouncer(db_url, tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run_bouncer(db_url: str, tmp_path: Path) -> Iterator[str]:
    if PGBOUNCER is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; scripts/test.sh does)")
    params = conninfo_to_dict(db_url)
    user = str(params.get("user") or pwd.getpwuid(os.getuid()).pw_name)
    host = str(params.get("host") or "127.0.0.1")
    port = _free_port()
    run_as: list[str] = []
    if os.getuid() == 0:
        # pgbouncer refuses to run as root; it switches to this user itself (-u).
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user for pgbouncer to run as")
        run_as = ["-u", "postgres"]
        tmp_path.chmod(0o755)
        os.chown(tmp_path, pwd.getpwnam("postgres").pw_uid, -1)
    (tmp_path / "users.txt").write_text(f'"{user}" ""\n')
    (tmp_path / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={params.get('port') or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {tmp_path / 'users.txt'}\n"
        f"admin_users = {user}\n"
        "pool_mode = transaction\n"
        "default_pool_size = 4\n"
        f"logfile = {tmp_path / 'pgbouncer.log'}\n"
    )
    for f in tmp_path.iterdir():
        f.chmod(0o644)
    proc = subprocess.Popen([PGBOUNCER, *run_as, str(tmp_path / "pgbouncer.ini")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = make_conninfo(db_url, host="127.0.0.1", port=str(port))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as c:
                    c.execute("select 1")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (tmp_path / "pgbouncer.log")
                    pytest.fail("pgbouncer did not start: " + (proc.communicate()[0] or "")
                                + (log.read_text() if log.exists() else ""))
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _bouncer_transactions(bouncer_url: str, dbname: str) -> int:
    """Return pgbouncer's count of transactions it carried for ``dbname`` (admin console)."""
    admin = make_conninfo(bouncer_url, dbname="pgbouncer")
    # The admin console speaks only the simple query protocol, which ClientCursor uses.
    with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as c:
        cur = c.execute("show stats")
        names = [d.name for d in cur.description or ()]
        for row in cur.fetchall():
            stats = dict(zip(names, row, strict=True))
            if stats["database"] == dbname:
                return int(stats["total_xact_count"])
    return 0


@pytest.mark.slow
def test_a_worker_behind_pgbouncer_in_transaction_mode_completes_workflows(
    db_url: str, bouncer: str
) -> None:
    direct = Client(db_url)
    direct.register_flow(BouncedDiamond)
    dbname = str(conninfo_to_dict(db_url)["dbname"])
    before = _bouncer_transactions(bouncer, dbname)

    bounced = Client(bouncer, prepare_threshold=None)
    worker = Worker(bounced, ["bounced"], concurrency=4, poll_interval=60, shutdown_grace=5,
                    listen_database=db_url, worker_id="bounced-worker")
    worker.run_in_thread()
    try:
        # Started after the worker is idle: only a notification can wake it within the test.
        time.sleep(0.3)
        runs = [direct.start_flow(BouncedDiamond.slug, {"n": n}) for n in (3, 10, 0)]
        deadline = time.monotonic() + 30
        results = {}
        for run_id in runs:
            while True:
                run = direct.get_run_status(run_id).to_dict()
                if run["status"] != "in_progress":
                    results[run_id] = run
                    break
                assert time.monotonic() < deadline, f"run {run_id} did not finish: {run}"
                time.sleep(0.05)
    finally:
        worker.stop()
        assert worker.join(15), "the worker did not stop"
        bounced.close()
    outputs = [results[r]["output"] for r in runs]
    assert [r["status"] for r in results.values()] == ["completed"] * 3
    assert outputs == [
        {"join": {"sum": 0 + 1 + 4, "count": 3}},
        {"join": {"sum": sum(i * i for i in range(10)), "count": 10}},
        {"join": {"sum": 0, "count": 0}},
    ]
    stats = worker.stats
    assert stats is not None
    assert (stats.completed, stats.failed, stats.stale) == (3 * 3 + 3 + 10, 0, 0)
    # Every claim and completion went through pgbouncer, each a transaction of its own.
    assert _bouncer_transactions(bouncer, dbname) - before >= stats.completed // 4
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select count(*), count(*) filter (where worker_id = 'bounced-worker'),"
            " max(attempts_count) from workflow.tasks"
        ).fetchone()
    assert rows == (stats.completed, stats.completed, 1)
    direct.close()
