r"""The claim loop: claim → run handlers → flush, for a set of sources, with wake-ups and leases.

Two users share one :class:`Engine` so that claim, run, lease renewal and flush exist once:
:class:`~singularity_workflow.Worker` serves named queues for every flow whose handlers are
registered in this process, and ``execute`` serves the reserved ``local`` queue for the one run
it started.

Threads and connections of one engine (all connections are dedicated, never pooled):

* the **loop** thread (whoever calls :meth:`Engine.run`) owns one connection for
  ``claim_tasks`` / ``complete_tasks`` / ``fail_tasks``; it is the only thread that claims or
  flushes (:mod:`._flush`), so results are reported in batches of whatever finished since the
  last flush, as soon as anything finished;
* the **listener** thread runs a :class:`~singularity_workflow._notify.Notifier` on
  ``workflow_q_<queue>`` (and, for ``execute``, ``workflow_run_<run_id>``). A notification
  marks its queue as worth a claim and wakes the loop; a slow poll (``poll_interval``) covers a
  lost notification, so one costs latency, never work. With ``listen_conninfo`` it connects
  there instead: behind pgbouncer in transaction mode LISTEN needs a direct (or session-mode)
  connection while the other two go through the bouncer;
* the **lease** thread (:mod:`._leases`) extends the leases of running tasks and fails the
  attempts that passed their step's ``timeout`` (:meth:`Engine._overdue`);
* up to ``concurrency`` daemon threads run sync handlers, and one event-loop thread runs every
  ``async def`` handler (:mod:`._pools`). ``concurrency`` bounds sync and async tasks together:
  the loop never holds more claimed tasks than that.

Nothing here holds workflow state that must survive a crash: a task whose result is lost (the
process died, the database went away for longer than the lease) is claimed again by someone once
its lease expires, and a late completion is rejected by the database, never double-counted.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from singularity_workflow._client import ClaimedTask, Client, UndecodableJson
from singularity_workflow._errors import NonRetryableError
from singularity_workflow._logging import task_fields
from singularity_workflow._notify import Notifier, is_connection_error
from singularity_workflow.definitions._signature import POSITIONAL
from singularity_workflow.worker._context import StepContext
from singularity_workflow.worker._flush import Flusher
from singularity_workflow.worker._handlers import (
    HandlerNotFound,
    Resolver,
    StepHandler,
    format_error,
    serialise_output,
)
from singularity_workflow.worker._leases import LeaseKeeper
from singularity_workflow.worker._observe import Observer
from singularity_workflow.worker._pools import AsyncRunner, DaemonPool
from singularity_workflow.worker._state import (
    EngineStats,
    InFlight,
    InFlightTable,
    LoopConnection,
    Source,
)

__all__ = ["DEFAULT_MAX_WRITTEN_OFF", "Engine", "StepTimeout"]

log = logging.getLogger("singularity_workflow.worker")

#: How many sync handler threads stuck past their step's timeout an engine tolerates before it
#: gives up (a worker then exits so that its supervisor starts a fresh process).
DEFAULT_MAX_WRITTEN_OFF = 10


def _is_async(fn: Callable[..., Any]) -> bool:
    """Tell whether calling ``fn`` gives a coroutine (async functions and async callables)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


def _bind(handler: StepHandler, ctx: StepContext | None) -> Callable[[Any], Any]:
    """Return the handler as a one-argument callable: context bound, typed I/O applied.

    The context goes positionally (``POSITIONAL``) or by the keyword the handler named; typed
    I/O parses the argument before the call and serialises the value after it (a misfit raises
    NonRetryableError, in the handler's thread, so it fails that task alone). The wrapper is
    async exactly when the handler is, so the engine still picks the right pool.
    """
    fn = handler.fn
    how = handler.context
    args: tuple[Any, ...] = (ctx,) if how == POSITIONAL else ()
    kwargs: dict[str, Any] = {how: ctx} if how is not None and how != POSITIONAL else {}
    parse = handler.typed.parse if handler.typed is not None else None
    dump = handler.typed.dump if handler.typed is not None else None
    if _is_async(fn):
        async def call_async(arg: Any) -> Any:
            value = await fn(parse(arg) if parse else arg, *args, **kwargs)
            return dump(value) if dump else value
        return call_async

    def call(arg: Any) -> Any:
        value = fn(parse(arg) if parse else arg, *args, **kwargs)
        return dump(value) if dump else value
    return call


class StepTimeout(TimeoutError):
    """An attempt ran longer than its step's ``timeout``: the text of the task's error."""


class Engine:
    """Claim → run → flush for a set of sources, with leases and wake-ups (see the module doc).

    Driven by one thread calling :meth:`run` (the loop thread); every other method is safe to
    call from any thread. ``on_notify(channel, payload)`` receives the notifications of
    ``extra_channels``, and ``("", "")`` after the listener reconnected (anything may have been
    missed).
    """

    def __init__(
        self,
        client: Client,
        sources: Sequence[Source],
        resolver: Resolver,
        *,
        resources: Sequence[str] | None = (),
        concurrency: int = 10,
        batch_size: int | None = None,
        poll_interval: float = 5.0,
        lease_renew_fraction: float = 0.5,
        worker_id: str,
        extra_channels: Sequence[str] = (),
        on_notify: Callable[[str, str], None] | None = None,
        listen_conninfo: str | None = None,
        max_written_off: int = DEFAULT_MAX_WRITTEN_OFF,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if not 0 < lease_renew_fraction < 1:
            raise ValueError(f"lease_renew_fraction must be in (0, 1), got {lease_renew_fraction}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self.client = client
        self.sources = list(sources)
        self.resolver = resolver
        # None claims whatever resources a step needs (execute: only this process can run
        # its local steps); a list claims only steps whose needs it covers (workers).
        self.resources = None if resources is None else list(resources)
        self.concurrency = concurrency
        self.batch_size = min(batch_size or concurrency, 1000)
        self.poll_interval = poll_interval
        self.lease_renew_fraction = lease_renew_fraction
        self.worker_id = worker_id
        self.stats = EngineStats()
        self.observer = Observer(client, self.stats, worker_id)
        self.max_written_off = max_written_off
        #: Set when the engine cannot go on (too many written-off threads); run() then returns.
        self.fatal: str | None = None
        # Attempts failed by their step timeout whose handler may still return: that late
        # outcome is dropped (the attempt's failure is already reported).
        self._timed_out: set[tuple[int, int]] = set()

        self._on_notify = on_notify
        self._channel_source = {f"workflow_q_{s.queue}": s for s in self.sources}
        self._tasks = InFlightTable()
        self._wake = self._tasks.wake  # something to do for the loop thread
        self._stopped = threading.Event()  # the listener thread should exit
        self._maybe_more: dict[Source, bool] = {s: True for s in self.sources}
        self._conn = LoopConnection(client, worker_id, self.stats, self._look_everywhere)
        self._flusher = Flusher(client, self._tasks, self._conn, self.stats,
                                concurrency=concurrency, worker_id=worker_id)
        self._leases = LeaseKeeper(client, self._tasks, self.stats,
                                   renew_fraction=lease_renew_fraction, worker_id=worker_id,
                                   on_overdue=self._overdue)
        connect: Callable[[], psycopg.Connection[Any]] = (
            client.connect_dedicated if listen_conninfo is None
            else lambda: psycopg.connect(listen_conninfo, autocommit=True)
        )
        self._notifier = Notifier(
            connect, [*self._channel_source, *extra_channels], on_reconnect=self._relistened,
            name=f"worker {worker_id}: listener",
        )
        self._pool = DaemonPool(concurrency, f"sw-handler-{worker_id}")
        self._async = AsyncRunner(f"sw-async-{worker_id}")
        self._rotate = 0

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, LISTEN (before returning, so no later notification is missed), start threads.

        Raises if the database cannot be reached at all: a worker that cannot connect at start
        is misconfigured, and ``execute`` must not start a run it cannot watch.
        """
        self._notifier.open()
        try:
            self._conn.open()
        except BaseException:
            self._notifier.close()
            raise
        threading.Thread(target=self._listen_loop, name=f"sw-listen-{self.worker_id}",
                         daemon=True).start()
        self._leases.start()

    def close(self) -> None:
        """Stop the helper threads and close every connection (in-flight handlers are left)."""
        # Not the notifier: the listener thread may sit up to a second in receive(); it sees
        # _stopped and closes its own connection (closing it from here would race that wait).
        self._stopped.set()
        self._leases.stop()
        self._pool.shutdown()
        self._async.shutdown()
        self._conn.close()

    def wake(self) -> None:
        """Make the loop thread look for work now."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """How many claimed tasks are not flushed yet (running or waiting for the flush)."""
        return len(self._tasks)

    # ----- the listener thread ---------------------------------------------------------------

    def _listen_loop(self) -> None:
        """Turn notifications into wake-ups until the engine closes (the notifier reconnects)."""
        while not self._stopped.is_set():
            try:
                # stop_after=1: act on each notification at once, not at the end of the wait.
                notes = self._notifier.receive(1.0, stop_after=1)
            except Exception as exc:  # not a connection error: log, and keep the wake-ups
                log.warning("worker %s: listener error: %s", self.worker_id, exc)
                self._stopped.wait(1.0)
                continue
            for n in notes:
                src = self._channel_source.get(n.channel)
                if src is not None:
                    with self._tasks.lock:
                        self._maybe_more[src] = True
                elif self._on_notify is not None:
                    self._on_notify(n.channel, n.payload)
                self._wake.set()
        self._notifier.close()

    def _relistened(self, conn: psycopg.Connection[Any]) -> None:
        """After the notifier reconnected: anything notified meanwhile is unknown, so look."""
        self._look_everywhere()
        if self._on_notify is not None:
            self._on_notify("", "")
        self._wake.set()

    def _look_everywhere(self) -> None:
        """Mark every source as worth a claim (a notification may have been missed)."""
        with self._tasks.lock:
            for s in self._maybe_more:
                self._maybe_more[s] = True

    # ----- the loop thread -------------------------------------------------------------------

    def run(self, *, until: Callable[[], bool], deadline: float | None = None,
            claiming: Callable[[], bool] = lambda: True,
            on_poll: Callable[[], None] | None = None) -> None:
        """Loop until ``until()`` is true or ``deadline`` (monotonic) passes.

        ``claiming()`` false stops new claims (shutdown) while results are still flushed;
        ``on_poll`` runs on every poll tick (``execute`` checks its run's status there).
        """
        next_poll = time.monotonic() + self.poll_interval
        while True:
            if claiming():
                for task in self._flusher.flush_and_claim(self._claim_in):
                    self._start(task)
            self.flush()
            if until() or self.fatal is not None:
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if claiming():
                self._claim_all()
            wait = next_poll - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if self._conn.down or self._flusher.unflushed:
                wait = min(wait, max(0.0, self._conn.retry_at - now))
            self._wake.wait(max(0.0, wait))
            self._wake.clear()
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_interval
                self._look_everywhere()
                if on_poll is not None:
                    on_poll()

    def flush(self) -> None:
        """Report every finished result now (see :meth:`Flusher.flush`)."""
        self._flusher.flush()

    def _claim_in(self, conn: psycopg.Connection[Any], free: int) -> list[ClaimedTask]:
        """Claim up to ``free`` tasks from every source inside the flush's transaction.

        Every source is claimed from, since the completions may have enqueued work on any.
        """
        claimed: list[ClaimedTask] = []
        for src in self.sources:
            qty = min(free - len(claimed), self.batch_size)
            if qty <= 0:
                break
            got = self.client.claim_tasks(
                src.queue, qty, worker_id=self.worker_id, resources=self.resources,
                for_run_id=src.for_run_id, conn=conn,
            )
            self.observer.claimed(got, conn)  # tracing: their runs' contexts, same transaction
            if len(got) >= qty:
                with self._tasks.lock:
                    self._maybe_more[src] = True
            claimed.extend(got)
        return claimed

    def _claim_all(self) -> None:
        """Claim from every source that may have work, up to the free capacity."""
        n = len(self.sources)
        self._rotate = (self._rotate + 1) % n  # fairness between queues when capacity is short
        for i in range(n):
            src = self.sources[(self._rotate + i) % n]
            conn = self._conn.get()
            if conn is None:
                return
            free = self._tasks.free(self.concurrency)
            if free <= 0:
                return
            with self._tasks.lock:
                if not self._maybe_more[src]:
                    continue
                # Cleared before the claim, never after: a notification that lands while the
                # claim runs (its work committed too late for our snapshot) sets it again, so
                # it cannot be lost.
                self._maybe_more[src] = False
            qty = min(free, self.batch_size)
            try:
                tasks = self.client.claim_tasks(
                    src.queue, qty, worker_id=self.worker_id,
                    resources=self.resources, for_run_id=src.for_run_id, conn=conn,
                )
            except Exception as exc:
                with self._tasks.lock:
                    self._maybe_more[src] = True
                if is_connection_error(exc):
                    self._conn.lost(exc)
                    return
                raise
            self.observer.claimed(tasks, conn)  # tracing: their runs' contexts
            if len(tasks) >= qty:
                # A full batch: more may be waiting, so claim again as soon as a slot frees.
                with self._tasks.lock:
                    self._maybe_more[src] = True
            for task in tasks:
                self._start(task)

    def _start(self, task: ClaimedTask) -> None:
        """Register a claimed task as in flight and hand it to a handler thread or the loop."""
        self.stats.claimed += 1
        handler: StepHandler | None = None
        error = ""
        try:
            handler = self.resolver(task)
        except HandlerNotFound as exc:
            error = f"HandlerNotFound: {exc}"
        except Exception as exc:
            error = format_error(exc)
        lease = handler.timeout if handler is not None and handler.timeout else None
        if lease is None:
            # Unknown step timeout: the lease the claim just took is as long as the timeout.
            left = (task.lease_expires_at - datetime.now(UTC)).total_seconds()
            lease = max(1, round(left))
        now = time.monotonic()
        # The step timeout bounds the attempt (see _overdue); the lease, renewed meanwhile,
        # only says the attempt is still ours.
        deadline = now + handler.timeout if handler is not None and handler.timeout else None
        entry = InFlight(task, lease, now + lease * self.lease_renew_fraction, deadline=deadline)
        self._tasks.add(entry)
        finish = self._flusher.put
        if handler is None:
            log.error("worker %s: task %s (%s/%s): %s", self.worker_id, task.task_id,
                      task.flow_slug, task.step_slug, error, extra=task_fields(task))
            finish(task, False, error)
            return
        arg = task.item if handler.is_map else task.input
        if isinstance(arg, UndecodableJson):  # the same input fails again: not retryable
            finish(task, False, f"step {task.step_slug!r}: {arg.reason}", retryable=False)
            return
        fn = handler.fn
        if handler.context is not None or handler.typed is not None:
            # Bound here (context, typed I/O), so the pools still call fn(arg).
            ctx = (StepContext(self.client, entry, is_map=handler.is_map)
                   if handler.context is not None else None)
            fn = _bind(handler, ctx)
        fn = self.observer.wrap(task, fn)  # span, handler seconds, log fields (worker/_observe)
        if _is_async(fn):
            try:
                coro = fn(arg)
            except Exception as exc:
                self._done(task, exc, None)
                return
            entry.future = self._async.submit(coro, lambda exc, value: self._done(task, exc, value))
        else:
            self._pool.submit(lambda: self._run_sync(entry, fn, arg))

    def _run_sync(self, entry: InFlight, fn: Callable[[Any], Any], arg: Any) -> None:
        """Run a sync handler on a pool thread (a returned awaitable is awaited on the loop)."""
        task = entry.task
        entry.thread = threading.current_thread()
        try:
            value = fn(arg)
        except BaseException as exc:
            self._done(task, exc, None)
            return
        if inspect.isawaitable(value):
            aw = value

            async def await_it() -> Any:
                return await aw

            entry.thread = None  # no longer on this thread: the step timeout cancels it there
            entry.future = self._async.submit(
                await_it(), lambda exc, v: self._done(task, exc, v))
            return
        self._done(task, None, value)

    def _done(self, task: ClaimedTask, exc: BaseException | None, value: Any) -> None:
        """Turn a handler's outcome into a result for the flush (any thread)."""
        key = (task.task_id, task.attempt)
        with self._tasks.lock:
            if key in self._timed_out:  # already failed by its step timeout
                self._timed_out.discard(key)
                return
        if exc is not None:
            if not isinstance(exc, Exception):
                log.warning("worker %s: task %s raised %s", self.worker_id, task.task_id,
                            type(exc).__name__, extra=task_fields(task))
            self._flusher.put(task, False, format_error(exc),
                              retryable=not isinstance(exc, NonRetryableError))
            return
        body, problem = serialise_output(task.step_slug, value)
        if problem is not None:  # the same value would fail again: not retryable
            self._flusher.put(task, False, problem, retryable=False)
        else:
            self._flusher.put(task, True, body)

    def _overdue(self, entries: list[InFlight]) -> None:
        """Fail the attempts that passed their step's timeout (called by the lease thread).

        An async handler is cancelled. A sync one cannot be stopped: its thread is written off
        (the pool starts another in its place, so the engine keeps its concurrency) and its
        eventual outcome is dropped. Past ``max_written_off`` stuck threads the engine sets
        ``fatal`` and its loop ends: a process full of stuck threads is better restarted.
        """
        for e in entries:
            task = e.task
            with self._tasks.lock:
                self._timed_out.add((task.task_id, task.attempt))
            self.stats.timed_out += 1
            seconds = round((e.deadline or 0) - e.claimed_at)
            error = StepTimeout(f"step {task.step_slug!r} ran longer than its timeout of"
                                f" {seconds} s (attempt {task.attempt})")
            log.warning("worker %s: task %s (%s/%s): %s", self.worker_id, task.task_id,
                        task.flow_slug, task.step_slug, error, extra=task_fields(task))
            self._flusher.put(task, False, f"{type(error).__name__}: {error}")
            if e.future is not None:
                e.future.cancel()
            elif e.thread is not None:
                stuck = self._pool.write_off(e.thread)
                self.stats.written_off += 1
                log.warning("worker %s: the thread running task %s cannot be stopped: written"
                            " off and replaced (%d stuck, limit %d)", self.worker_id,
                            task.task_id, stuck, self.max_written_off, extra=task_fields(task))
                if stuck > self.max_written_off and self.fatal is None:
                    self.fatal = (f"{stuck} handler threads are stuck past their step's timeout"
                                  f" (limit {self.max_written_off})")
                    log.error("worker %s: %s: stopping", self.worker_id, self.fatal)
                    self._wake.set()

    def drain(self, grace: float, skip: Callable[[], bool] = lambda: False) -> int:
        """Wait up to ``grace`` seconds for in-flight tasks, flushing as they end.

        Returns how many were still running when the grace ran out (their leases will expire
        and they will be claimed again elsewhere).
        """
        deadline = time.monotonic() + grace
        while True:
            self.flush()
            left = self.in_flight
            if left == 0 or time.monotonic() >= deadline or skip():
                break
            self._wake.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            self._wake.clear()
        if left:
            log.warning("worker %s: %d task(s) still running after the shutdown grace; their"
                        " leases will expire and another worker will run them", self.worker_id,
                        left)
        return left
