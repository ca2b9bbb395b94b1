"""Result flushing: report finished tasks in batches, and never let one bad result stall the rest.

Handler threads :meth:`Flusher.put` their results; the loop thread reports them, either together
with its next claims in one transaction (:meth:`Flusher.flush_and_claim`, the hot path) or on
their own (:meth:`Flusher.flush`, which retries deadlocks, sets aside a result whose run's rows
another session holds locked, and isolates a result the server refuses).
"""

from __future__ import annotations

import logging
import queue as queue_mod
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import psycopg

from singularity_workflow._client import ClaimedTask, Client
from singularity_workflow._logging import task_fields
from singularity_workflow._notify import BackoffPolicy, connection_lost
from singularity_workflow.worker._state import (
    EngineStats,
    InFlightTable,
    LoopConnection,
    Result,
    sqlstate,
)

__all__ = ["Flusher"]

log = logging.getLogger("singularity_workflow.worker")

#: SQLSTATEs after which a flush is simply tried again: deadlock, serialisation failure.
_RETRYABLE_SQLSTATES: Final = frozenset({"40P01", "40001"})
#: When some tasks finished, how long the flush may wait for the rest of the tasks claimed in the
#: last LINGER seconds. Tasks claimed together are mostly handed out together and, when their
#: handlers are quick, finish within a fraction of a millisecond of each other; reporting them in
#: one complete_tasks call instead of two or three halves the commits (each a WAL flush) and
#: the per-call cost of the SQL functions, which bound a worker's throughput. Measured with
#: no-op handlers at concurrency 10: 5 tasks per call without it, 10 with it (and half the CPU
#: per task, in Python and in PostgreSQL). A task claimed longer ago than this is never waited
#: for, so slow handlers and a lone task (a chain) are reported at once.
LINGER: Final = 0.002
#: A flush waits at most this long for a row lock (SET LOCAL lock_timeout). Locks on the rows a
#: flush touches are normally held for milliseconds by other completions; a longer wait means a
#: session holds one of the run's rows (idle in transaction, a manual query): the result is then
#: set aside and retried later, and the loop goes on serving everything else.
_FLUSH_LOCK_TIMEOUT: Final = "1s"
_LOCK_NOT_AVAILABLE: Final = "55P03"
#: Retry delays of a result whose flush met a held lock: doubling from 1 s, capped at 30 s.
LOCKED_RETRY: Final = BackoffPolicy(first=1.0, cap=30.0)

#: Claims more tasks inside the flush's transaction: ``claim(conn, free)`` -> the tasks.
Claim = Callable[[psycopg.Connection[Any], int], list[ClaimedTask]]


class Flusher:
    """The results of one engine between a handler's end and the database's verdict.

    Used by the loop thread only, except :meth:`put`, which any thread may call.
    """

    def __init__(self, client: Client, in_flight: InFlightTable, conn: LoopConnection,
                 stats: EngineStats, *, concurrency: int, worker_id: str) -> None:
        self._client = client
        self._in_flight = in_flight
        self._conn = conn
        self._stats = stats
        self._concurrency = concurrency
        self._worker_id = worker_id
        self._results: queue_mod.SimpleQueue[Result] = queue_mod.SimpleQueue()
        self.unflushed: list[Result] = []

    def put(self, task: ClaimedTask, ok: bool, value: Any, *, retryable: bool = True) -> None:
        """Queue a result for the next flush and wake the loop thread (any thread).

        ``retryable`` False (failures only): the task fails at once, its attempts left unused.
        """
        self._results.put(Result(task, ok, value, retryable=retryable))
        self._in_flight.wake.set()

    def _collect(self) -> None:
        """Move the results handlers finished so far to ``unflushed``."""
        while True:
            try:
                self.unflushed.append(self._results.get_nowait())
            except queue_mod.Empty:
                return

    def _linger(self) -> None:
        """Wait (at most ``LINGER``) for unfinished tasks claimed in the last ``LINGER`` s.

        Called once something finished; see ``LINGER`` for why. Every finished task sets
        ``wake``, so this returns as soon as the last of them is in. Clearing ``wake`` here
        loses nothing: the loop claims and checks ``until()`` right after the flush anyway, and
        notifications are kept in the engine's per-source flags.
        """
        wake = self._in_flight.wake
        while True:
            newest = self._in_flight.newest_claim({r.key for r in self.unflushed})
            if newest is None:
                return
            left = newest + LINGER - time.monotonic()
            if left <= 0:
                return
            wake.wait(left)
            wake.clear()
            self._collect()

    def flush_and_claim(self, claim: Claim) -> list[ClaimedTask]:
        """Report finished results and claim more in ONE transaction: one commit, not two.

        Every writing call costs a commit, and a commit waits for the WAL to reach the disk (a
        few ms here, far more than the SQL itself for a batch of ten). Sending the completions
        and the next claims together halves those waits, and the claims see the tasks that the
        completions just made ready (own writes), so the next step of a chain is claimed in the
        same transaction instead of after a notification and a second round trip.

        Any error other than a lost connection rolls the transaction back as a whole (nothing
        is recorded or started) and leaves the results to :meth:`flush`, whose per-call path
        retries deadlocks and isolates a result the server refuses. Results are recorded, and
        the claimed tasks returned (for the caller to start), only after the commit succeeded.
        """
        pending = self._pending_results()
        if not pending:
            return []
        conn = self._conn.get()
        if conn is None:
            return []
        done = [r for r in pending if r.ok]
        failed = [r for r in pending if not r.ok]
        # The results being reported free their slots when this commits.
        free = self._in_flight.free(self._concurrency) + len(pending)
        try:
            with conn.transaction():
                conn.execute(f"set local lock_timeout = '{_FLUSH_LOCK_TIMEOUT}'")
                completed = (
                    self._client.complete_tasks(
                        [(r.task.task_id, r.task.attempt, r.value) for r in done], conn=conn)
                    if done else {}
                )
                failures = (
                    self._client.fail_tasks(
                        [(r.task.task_id, r.task.attempt, r.value, r.retryable)
                         for r in failed], conn=conn)
                    if failed else {}
                )
                claimed = claim(conn, free)
        except Exception as exc:
            if connection_lost(exc):
                self._conn.lost(exc)
            # else (a held lock, a deadlock, a refused result): rolled back; flush() reports
            # the results one call at a time, which sets aside or retries them
            return []
        if done:
            self._record(done, completed, completing=True)
        if failed:
            self._record(failed, failures, completing=False)
        return claimed

    def _pending_results(self) -> list[Result]:
        """Collect finished results (lingering briefly, see ``LINGER``); drop abandoned ones."""
        self._collect()
        if not self.unflushed:
            return []
        self._linger()
        pending: list[Result] = []
        now = time.monotonic()
        for r in self.unflushed:
            if r.retry_at > now:  # set aside after meeting a held lock; kept, not yet retried
                continue
            entry = self._in_flight.get(r.key)
            if entry is not None and entry.abandoned:
                log.warning("worker %s: discarding the result of task %s attempt %s: its lease"
                            " was lost (it will be, or was, run again)", self._worker_id,
                            r.task.task_id, r.task.attempt, extra=task_fields(r.task))
                self._forget([r])
                continue
            pending.append(r)
        self.unflushed = [r for r in self.unflushed if r in pending or r.retry_at > now]
        return pending

    def flush(self) -> None:
        """Report every finished result: one complete_tasks and one fail_tasks call per batch."""
        pending = self._pending_results()
        if not pending:
            return
        conn = self._conn.get()
        if conn is None:
            return
        done = [r for r in pending if r.ok]
        failed = [r for r in pending if not r.ok]
        try:
            if done:
                self._report(conn, done, completing=True)
            if failed:
                self._report(conn, failed, completing=False)
        except Exception as exc:
            if connection_lost(exc):
                # Keep what was not reported; it is retried on the new connection (a result
                # whose lease expired meanwhile is then reported stale: the task is redelivered).
                self._conn.lost(exc)
                return
            raise

    def _report(self, conn: psycopg.Connection[Any], batch: list[Result], *,
                completing: bool) -> None:
        """Send one batch; retry deadlocks, and split a batch the server refuses outright."""
        for attempt in range(5):
            try:
                with conn.transaction():
                    conn.execute(f"set local lock_timeout = '{_FLUSH_LOCK_TIMEOUT}'")
                    if completing:
                        verdicts: dict[int, Any] = self._client.complete_tasks(
                            [(r.task.task_id, r.task.attempt, r.value) for r in batch],
                            conn=conn)
                    else:
                        verdicts = self._client.fail_tasks(
                            [(r.task.task_id, r.task.attempt, r.value, r.retryable)
                             for r in batch],
                            conn=conn)
            except Exception as exc:
                # A lock timeout or a deadlock is an OperationalError to psycopg, but the
                # session survives it: only a session that is gone goes to the reconnect.
                if connection_lost(exc):
                    raise
                if sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                    self._locked(conn, batch, completing=completing)
                    return
                if sqlstate(exc) in _RETRYABLE_SQLSTATES and attempt < 4:
                    time.sleep(0.01 * 2**attempt)
                    continue
                self._refused(conn, batch, exc, completing=completing)
                return
            self._record(batch, verdicts, completing=completing)
            return

    def _locked(self, conn: psycopg.Connection[Any], batch: list[Result], *,
                completing: bool) -> None:
        """Set aside the result(s) whose flush met a row lock held by another session.

        The others are reported one by one (each waits at most the lock timeout); a result that
        still meets the lock alone is retried later, backing off from 1 s to 30 s, so the loop
        keeps claiming and serving other runs, and a shutdown is not held up by it (past the
        grace, its lease expires and the task is redelivered once the lock is gone).
        """
        if len(batch) > 1:
            for r in batch:
                self._report(conn, [r], completing=completing)
            return
        r = batch[0]
        r.backoff = LOCKED_RETRY.after(r.backoff)
        r.retry_at = time.monotonic() + r.backoff
        log.warning("worker %s: reporting task %s waits on a row lock held by another session"
                    " (run %s); retrying in %.0f s", self._worker_id, r.task.task_id,
                    r.task.run_id, r.backoff, extra=task_fields(r.task))

    def _refused(self, conn: psycopg.Connection[Any], batch: list[Result], exc: BaseException,
                 *, completing: bool) -> None:
        """Isolate the cause of a batch the server refused as a request (not a lost connection).

        Each result is retried alone; a completion refused alone becomes a failure of its task
        (e.g. an output the server cannot store), and a failure report refused alone is dropped
        with an error log (its lease expiry brings the task back).
        """
        if len(batch) > 1:
            for r in batch:
                self._report(conn, [r], completing=completing)
            return
        r = batch[0]
        msg = f"{type(exc).__name__}: {exc}"
        self._stats.errors.append(msg)
        if completing:
            log.error("worker %s: the output of task %s was refused: %s", self._worker_id,
                      r.task.task_id, msg, extra=task_fields(r.task))
            # Not retryable: the same output would be refused again.
            bad = Result(r.task, False, f"step {r.task.step_slug!r}: its output was refused by"
                         f" the database: {msg}", retryable=False)
            self._report(conn, [bad], completing=False)
        else:
            log.error("worker %s: could not report the failure of task %s: %s", self._worker_id,
                      r.task.task_id, msg, extra=task_fields(r.task))
            self._forget([r])

    def _record(self, batch: list[Result], verdicts: dict[int, Any], *, completing: bool) -> None:
        if batch:
            self._stats.flush_batch_size.observe(len(batch))  # the worker's /metrics
        for r in batch:
            v = verdicts.get(r.task.task_id)
            if completing:
                if v:
                    self._stats.completed += 1
                else:
                    self._stats.stale += 1
                    log.info("worker %s: completion of task %s attempt %s was stale (the task"
                             " was claimed again or its run ended)", self._worker_id,
                             r.task.task_id, r.task.attempt, extra=task_fields(r.task))
            elif v == "stale":
                self._stats.stale += 1
            else:
                self._stats.failed += 1
                log.info("worker %s: task %s (%s/%s) attempt %s failed (%s): %s",
                         self._worker_id, r.task.task_id, r.task.flow_slug, r.task.step_slug,
                         r.task.attempt, v, str(r.value).splitlines()[0] if r.value else "",
                         extra=task_fields(r.task))
        self._forget(batch)

    def _forget(self, batch: Iterable[Result]) -> None:
        keys = {r.key for r in batch}
        self.unflushed = [r for r in self.unflushed if r.key not in keys]
        self._in_flight.forget(keys)  # wakes the loop: a slot freed, claim again
