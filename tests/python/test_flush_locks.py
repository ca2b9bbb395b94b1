"""A flush that meets a held row lock keeps its connection: the lock is the server's verdict.

psycopg files a lock timeout (55P03) and a deadlock (40P01) under ``OperationalError``, the
same class as a closed socket. The flush must tell them apart: a lost session is reconnected,
but a held lock sets the result aside (retried later) and a deadlock is retried at once, on
the same connection. Before ``connection_lost`` existed the flush took every one of them for a
lost connection and reconnected, so its lock and deadlock handling never ran.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import psycopg.errors
import pytest

from singularity_workflow import Client, Worker, Workflow, step
from singularity_workflow._notify import connection_lost

GATE = threading.Event()


class Gated(Workflow):
    """One distributed step that returns when the test opens the gate."""

    slug = "test_flush_locks.gated"

    @step(execution="distributed", queue="flush_locks_q")
    def held(self, input: dict[str, Any]) -> str:
        """Wait for the gate (at most 20 s), then finish."""
        GATE.wait(20)
        return "done"


@pytest.mark.parametrize(("exc", "lost"), [
    (psycopg.errors.LockNotAvailable("lock timeout"), False),
    (psycopg.errors.DeadlockDetected("deadlock"), False),
    (psycopg.errors.QueryCanceled("statement timeout"), False),
    (psycopg.errors.AdminShutdown("terminating connection"), True),
    (psycopg.errors.ConnectionFailure("connection failure"), True),
    (psycopg.OperationalError("server closed the connection unexpectedly"), True),
    (psycopg.InterfaceError("the connection is closed"), True),
    (ValueError("not a database error"), False),
])
def test_connection_lost_tells_a_lost_session_from_a_refused_request(
        exc: Exception, lost: bool) -> None:
    assert connection_lost(exc) is lost


def test_a_flush_blocked_by_a_held_lock_does_not_reconnect(db_url: str) -> None:
    GATE.clear()
    with Client(db_url) as client:
        client.register_flow(Gated)
        run_id = client.start_flow(Gated.slug, {})
        worker = Worker(db_url, ["flush_locks_q"], shutdown_grace=5)
        worker.run_in_thread()
        holder = psycopg.connect(db_url)  # not autocommit: the lock stays until rollback
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                deadline = time.monotonic() + 15
                while conn.execute("select status from workflow.tasks where run_id = %s",
                                   [run_id]).fetchone() != ("started",):
                    assert time.monotonic() < deadline, "the task was never claimed"
                    time.sleep(0.02)
            # The completion must lock the step's state: a session holds it, past the
            # flush's lock timeout (1 s).
            holder.execute("select 1 from workflow.step_states where run_id = %s for update",
                           [run_id])
            GATE.set()
            time.sleep(2.5)
            holder.rollback()
            deadline = time.monotonic() + 40  # the set-aside result is retried after 1-2 s
            while client.get_run_status(run_id).status == "in_progress":
                assert time.monotonic() < deadline, "the run did not complete after the lock"
                time.sleep(0.05)
            assert client.get_run_status(run_id).status == "completed"
            assert worker.stats is not None
            assert worker.stats.reconnects == 0, "a held lock was taken for a lost connection"
        finally:
            holder.close()
            worker.stop(wait_for_tasks=False)
            assert worker.join(10)
