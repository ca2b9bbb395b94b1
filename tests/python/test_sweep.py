"""The engine's throttled sweep under real concurrency (separate connections, real clock).

``claim_tasks`` runs ``workflow._sweep`` first, at most once a second per database, guarded by a
try-only advisory lock. Four connections claiming at the same moment, while a dead worker's task
waits to be released, must never wait for each other (the sweeper keeps its transaction open for
a while, so a waiting claim would show as a slow one), and the task must be released and claimed
exactly once, as the next attempt.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

CLAIMERS = 4
HOLD = 1.5  # seconds each claimer keeps its transaction open after its claim


def test_concurrent_claims_never_wait_and_release_a_dead_workers_task_once(
    db_url: str,
) -> None:
    """Four concurrent claims: none blocks on another; the dead worker's task is claimed once."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "select workflow.register_flow(%s)",
            [
                Jsonb(
                    {
                        "slug": "sweep_flow",
                        "steps": [
                            {
                                "slug": "only",
                                "execution": "distributed",
                                "queue": "sweepq",
                                "timeout": 600,
                            }
                        ],
                    }
                )
            ],
        )
        conn.execute("select workflow.start_flow('sweep_flow')")
        conn.execute(
            "select workflow.register_worker('doomed', heartbeat_timeout_seconds => 1)"
        )
        row = conn.execute(
            "select task_id, attempt from workflow.claim_tasks('sweepq', worker_id => 'doomed')"
        ).fetchone()
        assert row is not None and row[1] == 1
        task_id = row[0]
        time.sleep(
            1.2
        )  # the heartbeat is now older than the 1 s timeout: the worker is dead
        # The sweep is due (the claim above may have swept less than a second ago).
        conn.execute("update workflow.sweeps set swept_at = '-infinity'")

    barrier = threading.Barrier(CLAIMERS)
    results: list[tuple[float, list[Any]]] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def claimer(i: int) -> None:
        try:
            with psycopg.connect(db_url) as c:
                c.execute("select 1")  # connect and warm up before the race
                c.commit()
                barrier.wait()
                started = time.monotonic()
                rows = c.execute(
                    "select task_id, attempt from workflow.claim_tasks('sweepq', worker_id => %s)",
                    [f"w{i}"],
                ).fetchall()
                elapsed = time.monotonic() - started
                time.sleep(
                    HOLD
                )  # keep the sweep's advisory lock and row locks held meanwhile
                c.commit()
                with lock:
                    results.append((elapsed, rows))
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(results) == CLAIMERS
    # A claim that waited for another's transaction would take at least HOLD seconds.
    slowest = max(elapsed for elapsed, _ in results)
    assert slowest < HOLD / 2, f"a claim waited {slowest:.2f} s"
    claimed = [r for _, rows in results for r in rows]
    assert claimed == [(task_id, 2)], claimed

    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "select attempts_count, status from workflow.tasks where task_id = %s",
            [task_id],
        ).fetchone()
        assert row == (2, "started")
        live = conn.execute(
            "select count(*) from workflow.list_workers() where worker_id = 'doomed'"
        ).fetchone()
        assert live == (0,)
