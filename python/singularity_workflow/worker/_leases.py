"""Lease renewal and step timeouts: extend the leases of running tasks from a thread of its own.

The lease thread owns one connection, opened when the first renewal falls due (so an idle worker
holds two connections, a busy one three), and extends each in-flight task's lease every
``timeout * lease_renew_fraction`` seconds. It is separate from the handlers because a sync
handler may block its thread, or hold the GIL in C code for a while, and must still not lose its
lease (a handler can only delay this thread while it holds the GIL). A task whose renewal the
database refuses (its run ended, or it was claimed again after an expiry) is marked abandoned:
its result is discarded instead of reported. Each renewal also says whether the task's run is
paused (the lease is still extended), which the entry's ``run_paused`` keeps for the handler's
``StepContext.cancelled``. The same thread watches the step timeouts
(``on_overdue``): an attempt past its step's ``timeout`` is handed to the engine, which fails it,
and its lease is no longer renewed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from singularity_workflow._client import Client
from singularity_workflow._logging import task_fields
from singularity_workflow._notify import Backoff
from singularity_workflow.worker._state import EngineStats, InFlight, InFlightTable

__all__ = ["LeaseKeeper"]

log = logging.getLogger("singularity_workflow.worker")


class LeaseKeeper:
    """The lease thread of one engine: :meth:`start` it, :meth:`stop` it."""

    def __init__(self, client: Client, in_flight: InFlightTable, stats: EngineStats, *,
                 renew_fraction: float, worker_id: str,
                 on_overdue: Callable[[list[InFlight]], None] | None = None) -> None:
        self._client = client
        self._in_flight = in_flight
        self._stats = stats
        self._renew_fraction = renew_fraction
        self._worker_id = worker_id
        self._on_overdue = on_overdue
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sw-lease-{worker_id}",
                                        daemon=True)

    def start(self) -> None:
        """Start the lease thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connection (waits up to 5 s for it)."""
        self._stopped.set()
        self._in_flight.lease_wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        """Extend the leases of in-flight tasks when due; abandon those the database refuses."""
        conn: psycopg.Connection[Any] | None = None
        backoff = Backoff()
        wake = self._in_flight.lease_wake
        while not self._stopped.is_set():
            now = time.monotonic()
            # Step timeouts are watched here too: this thread wakes at least once a second and
            # is never blocked by a handler, so a stuck handler is noticed within a second.
            overdue = self._in_flight.overdue(now)
            if overdue and self._on_overdue is not None:
                try:
                    self._on_overdue(overdue)
                except Exception:  # pragma: no cover - must not stop lease renewal
                    log.exception("worker %s: handling a step timeout failed", self._worker_id)
            live = self._in_flight.live()
            due = [e for e in live if e.next_renewal <= now]
            if due:
                try:
                    if conn is None or conn.closed:
                        conn = self._client.connect_dedicated()
                    self._extend(conn, due)
                    backoff.reset()
                except Exception as exc:
                    delay = backoff.next()
                    log.warning("worker %s: lease renewal failed (%s); retrying in %.1f s",
                                self._worker_id, exc, delay)
                    if conn is not None:
                        try:
                            conn.close()
                        except Exception:  # pragma: no cover
                            pass
                    conn = None
                    self._stopped.wait(delay)
                    continue
                live = self._in_flight.live()
            nxt = min((e.next_renewal for e in live), default=now + 1.0)
            nxt = min(nxt, self._in_flight.next_deadline() or nxt)
            wake.wait(max(0.01, min(1.0, nxt - time.monotonic())))
            wake.clear()
        if conn is not None:
            conn.close()

    def _extend(self, conn: psycopg.Connection[Any], due: list[InFlight]) -> None:
        by_length: dict[int, list[InFlight]] = {}
        for e in due:
            by_length.setdefault(e.lease_seconds, []).append(e)
        for seconds, entries in by_length.items():
            verdicts = self._client.renew_leases(
                [(e.task.task_id, e.task.attempt) for e in entries], seconds, conn=conn)
            now = time.monotonic()
            for e in entries:
                e.next_renewal = now + seconds * self._renew_fraction
                verdict = verdicts.get(e.task.task_id)
                e.run_paused = verdict is not None and verdict.run_paused
                if (verdict is None or not verdict.extended) and self._in_flight.abandon(e):
                    self._stats.abandoned += 1
                    log.warning("worker %s: lost the lease of task %s attempt %s (%s/%s):"
                                " its result will be discarded", self._worker_id,
                                e.task.task_id, e.task.attempt, e.task.flow_slug,
                                e.task.step_slug, extra=task_fields(e.task))
