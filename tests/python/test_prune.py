"""Retention (workflow.prune) over real concurrent sessions.

pgTAP (tests/sql/prune) checks what one call deletes. Here: a prune batch held open in one
session blocks neither a second pruner (SKIP LOCKED: it takes other runs, without waiting) nor
workers claiming and completing live runs; and pruning in a loop while a worker serves new runs
removes exactly the old finished runs with all their rows. Ages use the injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from singularity_workflow import Client

FLOW = {"slug": "prune.chain", "steps": [{"slug": "a", "execution": "distributed",
                                          "queue": "prune_q"},
                                         {"slug": "b", "execution": "distributed",
                                          "depends_on": ["a"], "queue": "prune_q"}]}


def finish_runs(conn: psycopg.Connection[Any], n: int) -> list[Any]:
    """Start ``n`` runs and drive them to completion by hand; return their ids."""
    ids = [conn.execute("select workflow.start_flow('prune.chain', '{}')").fetchone()[0]  # type: ignore[index]
           for _ in range(n)]
    while True:
        tasks = conn.execute(
            "select task_id, attempt from workflow.claim_tasks('prune_q', 1000)").fetchall()
        if not tasks:
            return ids
        conn.execute(
            "select * from workflow.complete_tasks(%s, %s, %s::jsonb[])",
            [[t[0] for t in tasks], [t[1] for t in tasks], ["1"] * len(tasks)])


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        c.register_flow(FLOW)
        yield c


def later(conn: psycopg.Connection[Any]) -> datetime:
    """Return an instant one hour from the server's now: every run finished so far is old then."""
    row = conn.execute("select now() + interval '1 hour'").fetchone()
    assert row is not None
    return row[0]


def test_an_open_prune_batch_blocks_neither_another_pruner_nor_workers(
    db_url: str, client: Client, conn: psycopg.Connection[Any]
) -> None:
    finish_runs(conn, 6)
    live = client.start_flow("prune.chain", {})
    when = later(conn)
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        # Each pruner stays inside its transaction, holding its batch's row locks.
        one = first.execute("select runs_deleted from workflow.prune('30 minutes', 4, %s)",
                            [when]).fetchone()
        second.execute("set lock_timeout = '2s'")
        t0 = time.monotonic()
        two = second.execute("select runs_deleted from workflow.prune('30 minutes', 4, %s)",
                             [when]).fetchone()
        assert time.monotonic() - t0 < 1.5, "the second pruner waited for the first"
        assert (one, two) == ((4,), (2,)), "SKIP LOCKED split the six runs between them"
        # A worker's claim and completion of a live run go through meanwhile.
        conn.execute("set lock_timeout = '2s'")
        tasks = client.claim_tasks("prune_q", 10)
        assert [t.run_id for t in tasks] == [live]
        assert client.complete_tasks([(tasks[0].task_id, tasks[0].attempt, 1)]) == {
            tasks[0].task_id: True}
        first.commit()
        second.commit()
    row = conn.execute("select count(*) from workflow.runs").fetchone()
    assert row == (1,), "only the live run is left"


def test_pruning_in_a_loop_beside_a_busy_worker_removes_exactly_the_old_runs(
    db_url: str, client: Client, conn: psycopg.Connection[Any]
) -> None:
    # Leftovers of the module's other test: finished, then pruned, so every run here is ours.
    finish_runs(conn, 0)
    conn.execute("select workflow.prune('0 seconds', 100000, now() + interval '1 day')")
    old = finish_runs(conn, 25)
    # The split: runs that ended before this instant are old, runs that end after it are new.
    row = conn.execute("select clock_timestamp()").fetchone()
    assert row is not None
    split = row[0]
    stop = threading.Event()
    served: list[Any] = []

    def busy_worker() -> None:
        # Starts and finishes new runs while the pruner works: they end after the split.
        with psycopg.connect(db_url, autocommit=True) as own:
            while not stop.is_set():
                served.extend(finish_runs(own, 2))

    t = threading.Thread(target=busy_worker)
    t.start()
    try:
        totals = {"runs": 0, "tasks": 0, "events": 0, "calls": 0}
        while True:
            row = conn.execute(
                "select runs_deleted, tasks_deleted, events_deleted from"
                " workflow.prune('0 seconds', 7, %s)", [split]
            ).fetchone()
            assert row is not None
            totals["calls"] += 1
            if row[0] == 0:
                break
            totals["runs"] += row[0]
            totals["tasks"] += row[1]
            totals["events"] += row[2]
        deadline = time.monotonic() + 10
        while len(served) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        after = conn.execute("select runs_deleted from workflow.prune('0 seconds', 1000, %s)",
                             [split]).fetchone()
        assert after == (0,), "a run that ended after the split was taken as old"
    finally:
        stop.set()
        t.join(30)
    assert totals == {"runs": 25, "tasks": 50, "events": 25 * 4, "calls": 5}
    left = conn.execute("select count(*) from workflow.runs where run_id = any(%s)",
                        [old]).fetchone()
    assert left == (0,)
    for table in ("tasks", "step_states", "events"):
        orphans = conn.execute(
            f"select count(*) from workflow.{table} x where not exists"  # noqa: S608
            " (select 1 from workflow.runs r where r.run_id = x.run_id)"
        ).fetchone()
        assert orphans == (0,), table
    kept = conn.execute("select count(*) from workflow.runs where run_id = any(%s)",
                        [served]).fetchone()
    assert served and kept == (len(served),), "runs finished during the loop are kept"
