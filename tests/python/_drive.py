"""Drive the SQL core from many real connections at once, as workers would, for the stress tests.

A *driver* is one thread with its own psycopg connection (autocommit, so every call is its own
transaction, as a worker's would be). It loops ``claim_tasks(queue, batch)``, runs a pure Python
``handler`` on each claimed task, and reports the results with one ``complete_tasks`` and one
``fail_tasks`` call per batch, until no run of the watched flows is still ``started`` or a
deadline passes. Threads are enough here: the work is in the server, and psycopg releases the GIL
while it waits on the network, so N threads are N concurrently running backends.

Every database error a driver meets is recorded with its SQLSTATE and ends that driver: the tests
then fail on it. In particular a deadlock (40P01) is never retried, because the lock order of the
functions is claimed to be deadlock-free, so one deadlock is a bug to report, not noise to absorb.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

#: A claimed task as the handler sees it: the columns of ``claim_tasks`` by name.
Task = dict[str, Any]
#: What a handler returns: ``("ok", output)`` to complete, ``("fail", message)`` to fail.
Outcome = tuple[str, Any]


@dataclass
class DriverStats:
    """What one driver saw: claims, the server's verdicts on its reports, and any errors."""

    claimed: int = 0
    accepted: int = 0
    rejected: int = 0
    fail_outcomes: Counter[str] = field(default_factory=Counter)
    claimed_ids: list[tuple[int, int]] = field(default_factory=list)
    accepted_ids: list[int] = field(default_factory=list)
    errors: list[tuple[str | None, str]] = field(default_factory=list)


def claim(conn: psycopg.Connection[Any], queue: str, qty: int, **kwargs: Any) -> list[Task]:
    """Call ``claim_tasks`` and return its rows as dicts."""
    params: dict[str, Any] = {"queue": queue, "qty": qty, **kwargs}
    extra = "".join(f", {name} => %({name})s" for name in kwargs)
    cur = conn.execute(
        f"select * from workflow.claim_tasks(queue_name => %(queue)s, qty => %(qty)s{extra})",
        params,
    )
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def complete(
    conn: psycopg.Connection[Any], done: Sequence[tuple[int, int, Any]]
) -> dict[int, bool]:
    """Call ``complete_tasks`` for (task_id, attempt, output) triples; return accepted by id."""
    rows = conn.execute(
        "select task_id, accepted from workflow.complete_tasks(%s, %s, %s::jsonb[])",
        [[d[0] for d in done], [d[1] for d in done], [Jsonb(d[2]) for d in done]],
    ).fetchall()
    return {int(r[0]): bool(r[1]) for r in rows}


def fail(conn: psycopg.Connection[Any], failed: Sequence[tuple[int, int, str]]) -> dict[int, str]:
    """Call ``fail_tasks`` for (task_id, attempt, error) triples; return the outcome by id."""
    rows = conn.execute(
        "select task_id, outcome from workflow.fail_tasks(%s, %s, %s)",
        [[f[0] for f in failed], [f[1] for f in failed], [f[2] for f in failed]],
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def live_runs(conn: psycopg.Connection[Any], flows: Sequence[str]) -> int:
    """Return how many runs of ``flows`` are still started."""
    row = conn.execute(
        "select count(*) from workflow.runs where flow_slug = any(%s) and status = 'started'",
        [list(flows)],
    ).fetchone()
    return int(row[0]) if row else 0


def run_driver(
    url: str,
    queue: str,
    flows: Sequence[str],
    handler: Callable[[Task], Outcome],
    *,
    batch: int,
    deadline: float,
    stop: threading.Event,
    worker_id: str,
) -> DriverStats:
    """Claim, handle and report tasks of ``queue`` until the flows' runs all ended (see module)."""
    stats = DriverStats()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set() and time.monotonic() < deadline:
                tasks = claim(conn, queue, batch, worker_id=worker_id)
                if not tasks:
                    if live_runs(conn, flows) == 0:
                        return stats
                    time.sleep(0.005)
                    continue
                stats.claimed += len(tasks)
                done: list[tuple[int, int, Any]] = []
                failed: list[tuple[int, int, str]] = []
                for task in tasks:
                    stats.claimed_ids.append((task["task_id"], task["attempt"]))
                    kind, value = handler(task)
                    if kind == "ok":
                        done.append((task["task_id"], task["attempt"], value))
                    else:
                        failed.append((task["task_id"], task["attempt"], str(value)))
                if done:
                    verdicts = complete(conn, done)
                    for task_id, accepted in verdicts.items():
                        if accepted:
                            stats.accepted += 1
                            stats.accepted_ids.append(task_id)
                        else:
                            stats.rejected += 1
                if failed:
                    stats.fail_outcomes.update(fail(conn, failed).values())
    except psycopg.Error as exc:
        stats.errors.append((exc.sqlstate, str(exc)))
        stop.set()  # one error fails the test: stop the others early
    return stats


def drive(
    url: str,
    queue: str,
    flows: Sequence[str],
    handler: Callable[[Task], Outcome],
    *,
    drivers: int = 8,
    batch: int = 50,
    timeout: float = 90.0,
) -> list[DriverStats]:
    """Run ``drivers`` concurrent drivers to the end (or ``timeout`` s); return their stats."""
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    results: list[DriverStats] = [DriverStats() for _ in range(drivers)]

    def target(i: int) -> None:
        results[i] = run_driver(
            url, queue, flows, handler,
            batch=batch, deadline=deadline, stop=stop, worker_id=f"driver-{i}",
        )

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(drivers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    return results


def errors_of(results: Sequence[DriverStats]) -> list[tuple[str | None, str]]:
    """Return every error any driver recorded (deadlocks first, as they are the worst news)."""
    errs = [e for r in results for e in r.errors]
    return sorted(errs, key=lambda e: e[0] != "40P01")
