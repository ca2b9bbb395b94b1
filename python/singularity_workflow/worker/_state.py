"""What the threads of one engine share: the tasks in flight, the loop's connection, the counters.

* :class:`InFlightTable` holds every claimed task between its claim and its flush. The loop
  thread adds and removes entries, the lease thread marks those whose lease the database
  refused (``abandoned``), and handler threads only wake the loop. One lock guards it.
* :class:`LoopConnection` is the loop thread's one connection (claims and flushes): it is
  re-opened after a loss with the package's one back-off policy, and tells the owner through
  ``on_reconnect`` (notifications may have been missed meanwhile).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from singularity_workflow._client import ClaimedTask, Client
from singularity_workflow._metrics import BATCH_BUCKETS, SECONDS_BUCKETS, Histogram
from singularity_workflow._notify import Backoff

__all__ = [
    "EngineStats",
    "InFlight",
    "InFlightTable",
    "LoopConnection",
    "Result",
    "Source",
    "TaskKey",
    "sqlstate",
]

log = logging.getLogger("singularity_workflow.worker")

#: A task attempt: (task_id, attempt). Results and leases are keyed by it.
TaskKey = tuple[int, int]


@dataclass(frozen=True)
class Source:
    """Where an engine claims from: a queue, and for the ``local`` queue the run it executes."""

    queue: str
    for_run_id: UUID | None = None


@dataclass
class InFlight:
    """A claimed task between claim and flush, as the loop and the lease thread see it."""

    task: ClaimedTask
    lease_seconds: int
    next_renewal: float
    abandoned: bool = False
    # The run was paused at the last lease renewal (the lease thread sets it; resume clears it).
    run_paused: bool = False
    claimed_at: float = field(default_factory=time.monotonic)
    # The step's timeout as a monotonic time: past it the attempt is failed (timed_out) and its
    # lease is no longer renewed. None: no limit known.
    deadline: float | None = None
    timed_out: bool = False
    # The pool thread running a sync handler (None for async ones and before it started).
    thread: threading.Thread | None = None
    # The future of an async handler (cancelled when the step timeout passes).
    future: concurrent.futures.Future[Any] | None = None


@dataclass
class Result:
    """A finished handler's outcome, waiting for the next flush."""

    task: ClaimedTask
    ok: bool
    value: Any  # the output when ok (serialised: a Jsonb), else the error text
    # A failure that retrying cannot change (NonRetryableError, an output that cannot be
    # serialised): fail_tasks then fails the task at once instead of spending attempts.
    retryable: bool = True
    # When a flush of this result met a row lock held by another session (lock_timeout), it is
    # retried alone from retry_at on (monotonic), backing off, so it cannot stall the loop.
    retry_at: float = 0.0
    backoff: float = 0.0

    @property
    def key(self) -> TaskKey:
        """The task attempt this result is of."""
        return (self.task.task_id, self.task.attempt)


@dataclass
class EngineStats:
    """Counters of what an engine did (for logs, tests and the CLI)."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    stale: int = 0
    abandoned: int = 0
    timed_out: int = 0
    written_off: int = 0  # sync handler threads stuck past their step's timeout, replaced
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    # For a worker's /metrics (worker/_observe.py): how long handlers ran, per flow, step and
    # outcome; how many results each flush reported in one transaction.
    handler_seconds: Histogram = field(default_factory=lambda: Histogram(
        "singularity_workflow_worker_handler_duration_seconds",
        "Seconds a step handler ran, per flow, step and outcome (ok, error).",
        SECONDS_BUCKETS, ("flow", "step", "outcome")))
    flush_batch_size: Histogram = field(default_factory=lambda: Histogram(
        "singularity_workflow_worker_flush_batch_size",
        "Results reported per flush transaction.", BATCH_BUCKETS))


def sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of ``exc`` (or of the psycopg error it wraps)."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "code", None)
        if isinstance(code, str):
            return code
        seen = seen.__cause__
    return None


class InFlightTable:
    """The claimed, not yet flushed tasks of one engine, and the events that wake its threads.

    ``wake``: the loop thread has something to do (a result, a notification, a freed slot).
    ``lease_wake``: a new task is in flight, or the engine stops.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.lease_wake = threading.Event()
        self._entries: dict[TaskKey, InFlight] = {}

    def __len__(self) -> int:
        with self.lock:
            return len(self._entries)

    def add(self, entry: InFlight) -> None:
        """Register a claimed task and let the lease thread schedule its renewal."""
        with self.lock:
            self._entries[(entry.task.task_id, entry.task.attempt)] = entry
        self.lease_wake.set()

    def get(self, key: TaskKey) -> InFlight | None:
        """Return the entry of a task attempt (None once flushed)."""
        with self.lock:
            return self._entries.get(key)

    def contains(self, key: TaskKey) -> bool:
        """Tell whether a task attempt is still in flight."""
        with self.lock:
            return key in self._entries

    def live(self) -> list[InFlight]:
        """Return the entries whose lease is still ours (and worth renewing)."""
        with self.lock:
            return [e for e in self._entries.values() if not e.abandoned and not e.timed_out]

    def overdue(self, now: float) -> list[InFlight]:
        """Mark and return the entries whose step timeout passed (each is returned once)."""
        with self.lock:
            due = [e for e in self._entries.values() if e.deadline is not None
                   and e.deadline <= now and not e.timed_out and not e.abandoned]
            for e in due:
                e.timed_out = True
            return due

    def next_deadline(self) -> float | None:
        """Return the earliest step timeout of the running entries (monotonic), if any."""
        with self.lock:
            return min((e.deadline for e in self._entries.values()
                        if e.deadline is not None and not e.timed_out), default=None)

    def abandon(self, entry: InFlight) -> bool:
        """Mark ``entry`` as having lost its lease; False if it was flushed meanwhile."""
        with self.lock:
            still_here = (entry.task.task_id, entry.task.attempt) in self._entries
            if still_here:
                entry.abandoned = True
            return still_here

    def newest_claim(self, excluding: set[TaskKey]) -> float | None:
        """Return when the newest in-flight task not in ``excluding`` was claimed (monotonic)."""
        with self.lock:
            return max((e.claimed_at for key, e in self._entries.items()
                        if key not in excluding), default=None)

    def free(self, concurrency: int) -> int:
        """Return how many more tasks may be claimed under ``concurrency``."""
        with self.lock:
            return concurrency - len(self._entries)

    def forget(self, keys: Iterable[TaskKey]) -> None:
        """Remove flushed (or discarded) task attempts and wake the loop: slots are free."""
        with self.lock:
            for key in keys:
                self._entries.pop(key, None)
        self.wake.set()


class LoopConnection:
    """The loop thread's connection, re-opened with back-off after a loss.

    ``get()`` returns the connection, or None while the back-off says wait (``retry_at`` is when
    to try again). ``on_reconnect`` runs after each successful re-open.
    """

    def __init__(self, client: Client, worker_id: str, stats: EngineStats,
                 on_reconnect: Callable[[], None]) -> None:
        self._client = client
        self._worker_id = worker_id
        self._stats = stats
        self._on_reconnect = on_reconnect
        self._conn: psycopg.Connection[Any] | None = None
        self._backoff = Backoff()
        self.retry_at = 0.0

    @property
    def down(self) -> bool:
        """True while there is no open connection."""
        return self._conn is None

    def open(self) -> None:
        """Connect now; raise if the database cannot be reached (used at start)."""
        self._conn = self._client.connect_dedicated()

    def get(self) -> psycopg.Connection[Any] | None:
        """Return the connection, reconnecting with exponential back-off when it was lost."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        now = time.monotonic()
        if now < self.retry_at:
            return None
        try:
            self._conn = self._client.connect_dedicated()
        except Exception as exc:
            self._conn = None
            delay = self._backoff.next()
            self.retry_at = now + delay
            log.warning("worker %s: cannot reconnect (%s); retrying in %.1f s",
                        self._worker_id, exc, delay)
            return None
        self._stats.reconnects += 1
        log.info("worker %s: reconnected to the database", self._worker_id)
        self._backoff.reset()
        self._on_reconnect()
        return self._conn

    def lost(self, exc: BaseException) -> None:
        """Close a connection that failed; the next :meth:`get` reconnects after the back-off."""
        log.warning("worker %s: lost the database connection: %s", self._worker_id, exc)
        self.close()
        self.retry_at = time.monotonic() + self._backoff.next()

    def close(self) -> None:
        """Close the connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass
