"""The worker's housekeeping (``workflow.maintain``) runs beside the claim loop, never on it.

Real connections: a session holds a lock that the housekeeping's ANALYZE waits for, so its
``maintain`` call hangs, and the worker must go on claiming and completing meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from singularity_workflow import Client, Worker, Workflow, step


class Served(Workflow):
    """One step the worker serves."""

    slug = "test_housekeeping.served"

    @step(execution="distributed", queue="w_housekeeping")
    def only(self, input: dict[str, Any]) -> dict[str, bool]:
        """Return at once."""
        return {"ok": True}


class Unserved(Workflow):
    """A flow on a queue no worker here serves: its runs only make the statistics stale."""

    slug = "test_housekeeping.unserved"

    @step(execution="distributed", queue="w_housekeeping_idle")
    def only(self, input: dict[str, Any]) -> None:
        """Never runs."""


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


def _wait_for(what: str, check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_maintain_call_waiting_on_a_lock_does_not_stall_claims(
    client: Client, db_url: str
) -> None:
    client.register_flow(Served)
    client.register_flow(Unserved)
    # 700 runs: events, runs, step_states and tasks all become stale enough for maintain to
    # ANALYZE them (more than 500 rows changed since the last analysis).
    client.start_flows(Unserved.slug, [{"i": i} for i in range(700)])
    with psycopg.connect(db_url, autocommit=True) as watch:
        _wait_for("the statistics of workflow.events to go stale", lambda: (watch.execute(
            "select n_mod_since_analyze > 500 from pg_stat_user_tables"
            " where schemaname = 'workflow' and relname = 'events'").fetchone() or (False,))[0])
        with psycopg.connect(db_url) as holder:
            # ANALYZE needs SHARE UPDATE EXCLUSIVE on the table; inserts (the hot path's
            # events) take ROW EXCLUSIVE, which this lock does not block.
            holder.execute("lock table workflow.events in share update exclusive mode")
            worker = Worker(db_url, ["w_housekeeping"], poll_interval=0.2, shutdown_grace=5)
            worker.run_in_thread()
            try:
                _wait_for("maintain to wait for the lock", lambda: (watch.execute(
                    "select count(*) > 0 from pg_stat_activity where wait_event_type = 'Lock'"
                    " and query like %s and datname = current_database()",
                    ["%workflow.maintain%"]).fetchone() or (False,))[0])
                assert worker._housekeeper is not None
                calls = worker._housekeeper.calls
                # While maintain hangs, the loop claims and completes a run's task at once.
                started = time.monotonic()
                run_id = client.start_flow(Served.slug, {})
                _wait_for("the served run to complete",
                          lambda: client.get_run_status(run_id).status == "completed",
                          timeout=5)
                assert time.monotonic() - started < 5
                assert worker._housekeeper.calls == calls, "maintain was not blocked"
                holder.rollback()  # release the lock: the pending maintain call finishes
                _wait_for("maintain to finish after the lock went",
                          lambda: worker._housekeeper is not None
                          and worker._housekeeper.calls > calls)
            finally:
                worker.stop(wait_for_tasks=False)
                assert worker.join(10), "the worker did not stop"


def test_a_tick_during_a_slow_call_is_skipped_not_queued(client: Client, db_url: str) -> None:
    from singularity_workflow.worker._housekeeping import Housekeeper

    entered: list[float] = []

    def slow_before() -> None:
        entered.append(time.monotonic())
        time.sleep(0.5)

    keeper = Housekeeper(client, 0.05, worker_id="hk-test", before=slow_before)
    keeper.start()
    time.sleep(1.2)
    keeper.stop()
    # Each call takes 0.5 s plus one 0.05 s wait: at most 3 in 1.2 s, not one per 0.05 s tick.
    assert 1 <= len(entered) <= 3
    gaps = [b - a for a, b in zip(entered, entered[1:], strict=False)]
    assert all(g >= 0.5 for g in gaps)
    assert keeper.calls == len(entered) or keeper.calls == len(entered) - 1
