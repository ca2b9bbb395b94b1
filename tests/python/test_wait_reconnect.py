"""``wait_for_run`` outlives its connections: the server cutting them off does not end the wait.

A failover or a restart drops every connection of a waiter: the LISTEN one (the notifier
reconnects it) and the Client's own, used for the status reads. Here the server terminates
both while the run is still running; the run then completes, and the wait must return it
completed instead of raising the lost connection. (bench/failover.py checks the same across a
real promotion.)
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from singularity_workflow import Client, wait_for_run


def test_wait_for_run_returns_the_run_after_its_connections_were_killed(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow({"slug": "reconnect_wait", "steps": [
            {"slug": "only", "execution": "distributed", "queue": "reconnect_q"}]})
        run_id = client.start_flow("reconnect_wait", {})
        got: dict[str, Any] = {}

        def wait() -> None:
            try:
                got["status"] = wait_for_run(run_id, timeout=30, client=client)
            except Exception as exc:  # the assertion below names it
                got["error"] = exc

        waiter = threading.Thread(target=wait)
        waiter.start()
        with psycopg.connect(db_url, autocommit=True) as conn:
            # Both of the waiter's connections (the Client's and the LISTEN one) are open.
            deadline = time.monotonic() + 10
            while conn.execute(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and pid <> pg_backend_pid()").fetchone()[0] < 2:
                assert time.monotonic() < deadline, "the waiter never connected"
                time.sleep(0.05)
            killed = conn.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                " where datname = current_database() and pid <> pg_backend_pid()").fetchone()[0]
            assert killed >= 2
            time.sleep(0.3)  # the waiter meets the dead connections before the run ends
            task_id, attempt = conn.execute(
                "select task_id, attempt from workflow.claim_tasks('reconnect_q', 1)").fetchone()
            conn.execute("select * from workflow.complete_tasks(array[%s]::bigint[],"
                         " array[%s], array['{\"ok\": true}'::jsonb])", [task_id, attempt])
        waiter.join(30)
        assert "error" not in got, got
        assert got["status"].status == "completed"
