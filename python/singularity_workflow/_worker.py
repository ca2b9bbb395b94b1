r"""Workers: claim tasks from queues, run their step handlers, report the results in batches.

Two users share one engine (:class:`_Engine`) so that claim, run, lease renewal and flush exist
once: :class:`Worker` serves named queues for every flow whose handlers are registered in this
process, and :func:`singularity_workflow.execute` serves the reserved ``local`` queue for the one
run it started.

Threads and connections of one engine (all connections are dedicated, never pooled):

* the **loop** thread owns one connection for ``claim_tasks`` / ``complete_tasks`` /
  ``fail_tasks``; it is the only thread that claims or flushes, so results are reported in
  batches of whatever finished since the last flush, as soon as anything finished (waiting at
  most ``_LINGER``, 2 ms, for the rest of a batch claimed just before: see there why);
* the **listener** thread owns one connection that only ``LISTEN``\\ s on ``workflow_q_<queue>``
  (and, for ``execute``, ``workflow_run_<run_id>``). A notification sets a wake-up event; a slow
  poll (``poll_interval``) covers a lost notification, so one costs latency, never work. With
  ``listen_database`` it connects there instead: behind pgbouncer in transaction mode LISTEN
  needs a direct (or session-mode) connection while the other two go through the bouncer;
* the **lease** thread owns one connection (opened when the first renewal falls due, so an
  idle worker holds two connections, a busy one three) and extends the leases of running
  tasks every ``timeout * lease_renew_fraction`` seconds. It is separate from the handlers
  because a sync handler may block its thread, or hold the GIL in C code for a while, and must
  still not lose its lease (a handler can only delay this thread while it holds the GIL);
* up to ``concurrency`` daemon threads run sync handlers, and one event-loop thread runs every
  ``async def`` handler. ``concurrency`` bounds sync and async tasks together: the loop never
  holds more claimed tasks than that.

Nothing here holds workflow state that must survive a crash: a task whose result is lost (the
process died, the database went away for longer than the lease) is claimed again by someone once
its lease expires, and a late completion is rejected by the database, never double-counted.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import queue as queue_mod
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from singularity_workflow._client import ClaimedTask, Client, UndecodableJson, to_jsonb
from singularity_workflow.definitions import WorkflowDef, find_handler, registry

log = logging.getLogger("singularity_workflow.worker")

#: SQLSTATEs after which a flush is simply tried again: deadlock, serialisation failure.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
#: Reconnection back-off: first wait, and cap (a database restart is usually seconds).
_BACKOFF_START = 0.1
_BACKOFF_CAP = 5.0
#: A step's error text is stored in a row; a runaway traceback should not bloat it.
_MAX_ERROR_CHARS = 16_000
#: When some tasks finished, how long the flush may wait for the rest of the tasks claimed in the
#: last LINGER seconds. Tasks claimed together are mostly handed out together and, when their
#: handlers are quick, finish within a fraction of a millisecond of each other; reporting them in
#: one complete_tasks call instead of two or three halves the commits (each a WAL flush) and
#: the per-call cost of the SQL functions, which bound a worker's throughput. Measured with
#: no-op handlers at concurrency 10: 5 tasks per call without it, 10 with it (and half the CPU
#: per task, in Python and in PostgreSQL). A task claimed longer ago than this is never waited
#: for, so slow handlers and a lone task (a chain) are reported at once.
_LINGER = 0.002
#: A flush waits at most this long for a row lock (SET LOCAL lock_timeout). Locks on the rows a
#: flush touches are normally held for milliseconds by other completions; a longer wait means a
#: session holds one of the run's rows (idle in transaction, a manual query): the result is then
#: set aside and retried later, and the loop goes on serving everything else.
_FLUSH_LOCK_TIMEOUT = "1s"
_LOCK_NOT_AVAILABLE = "55P03"
#: Retry delays of a result whose flush met a held lock: doubling from 1 s, capped at 30 s.
_LOCKED_RETRY_START = 1.0
_LOCKED_RETRY_CAP = 30.0


# --------------------------------------------------------------------------------------------
# What the engine needs to know about a step, and how it finds out
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepHandler:
    """How to run one step's tasks: its function, its shape, and its lease length.

    ``is_map``: the handler receives the task's map element instead of the input dict.
    ``timeout``: the step's lease in seconds (renewed every ``timeout * lease_renew_fraction``);
    ``None`` when unknown, and then it is estimated from the lease the claim returned.
    """

    fn: Callable[[Any], Any]
    is_map: bool
    timeout: int | None


class HandlerNotFound(LookupError):
    """No handler for a claimed task's (flow, step) in this process; the task is failed."""


#: Finds the handler of a claimed task, or raises :class:`HandlerNotFound`.
Resolver = Callable[[ClaimedTask], StepHandler]


def _handler_from_def(defn: WorkflowDef, step_slug: str) -> StepHandler:
    """Build the :class:`StepHandler` of ``step_slug`` from a workflow's definition."""
    try:
        sdef = defn.step(step_slug)
    except KeyError:
        raise HandlerNotFound(
            f"flow {defn.slug!r} as defined in this process has no step {step_slug!r}"
        ) from None
    return StepHandler(defn.handler(step_slug), sdef.type == "map", sdef.timeout)


class RegistryResolver:
    """Find a task's handler in the process-wide workflow registry (what workers use).

    A flow known here only by its handlers (``register_handlers``, for flows built in the
    database) has its shape (map or single, lease length) read once with ``get_flow``.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._shapes: dict[str, dict[str, dict[str, Any]]] = {}

    def __call__(self, task: ClaimedTask) -> StepHandler:
        """Return the handler of ``task``, or raise :class:`HandlerNotFound`."""
        defn = registry.get(task.flow_slug)
        if defn is None:
            raise HandlerNotFound(
                f"no handler for step {task.step_slug!r} of flow {task.flow_slug!r} in this"
                " worker: the flow is not defined in this process (import the module that"
                " defines it, e.g. `singularity-workflow worker -i my_app.workflows`)"
            )
        if not defn.handlers_only:
            return _handler_from_def(defn, task.step_slug)
        fn = find_handler(task.flow_slug, task.step_slug)
        if fn is None:
            raise HandlerNotFound(
                f"no handler registered for step {task.step_slug!r} of flow {task.flow_slug!r}"
            )
        shape = self._shapes.get(task.flow_slug)
        if shape is None or task.step_slug not in shape:
            flow = self._client.get_flow(task.flow_slug)
            shape = self._shapes[task.flow_slug] = {s["slug"]: s for s in flow["steps"]}
        s = shape.get(task.step_slug, {})
        return StepHandler(fn, s.get("type") == "map", s.get("timeout"))


def def_resolver(defn: WorkflowDef) -> Resolver:
    """Return a resolver bound to one workflow definition (what ``execute`` uses for its run)."""

    def resolve(task: ClaimedTask) -> StepHandler:
        if task.flow_slug != defn.slug:
            raise HandlerNotFound(f"task of flow {task.flow_slug!r} claimed for {defn.slug!r}")
        return _handler_from_def(defn, task.step_slug)

    return resolve


# --------------------------------------------------------------------------------------------
# Running handlers
# --------------------------------------------------------------------------------------------


def format_error(exc: BaseException) -> str:
    """Render a handler's exception as the task's error: ``ExcType: message`` then the traceback."""
    head = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc))
    text = f"{head}\n\n{tb}"
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 40] + "\n... (error text truncated)"
    return text


def _serialise_output(step_slug: str, value: Any) -> tuple[Jsonb | None, str | None]:
    """Return ``(the output as a Jsonb, None)``, or ``(None, why it cannot be a step output)``.

    Done in the handler's thread rather than left to the flush, because one bad value must
    fail its own task, not the whole batch's SQL call. NaN and infinities are refused too
    (PostgreSQL's jsonb rejects them), and so are NUL characters. The serialised text is what
    the flush sends (``complete_tasks`` passes a Jsonb through), so each output is serialised
    once, not once to check it and again to send it.
    """
    try:
        return to_jsonb(value, "the output"), None
    except TypeError as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
    except RecursionError as exc:  # nested deeper than json can follow
        cause = exc
    return None, (
        f"step {step_slug!r} returned a value that is not JSON-serialisable:"
        f" {type(cause).__name__}: {cause} (got {type(value).__name__})"
    )


class _DaemonPool:
    """A fixed-size pool of daemon threads for sync handlers.

    Not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined at interpreter exit,
    so one handler stuck past the shutdown grace would keep a stopped worker process alive.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue_mod.SimpleQueue[Callable[[], None] | None] = queue_mod.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a pool thread (threads start lazily, up to the pool size)."""
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                t = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(t)
                t.start()
            else:
                self._idle -= 1
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # pragma: no cover - jobs catch their own errors
                log.exception("unexpected error in a handler thread")
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Ask idle threads to exit (running ones exit when their job ends)."""
        for _ in self._threads:
            self._jobs.put(None)


class _AsyncRunner:
    """One event loop in its own daemon thread, for every ``async def`` handler of an engine."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def submit(
        self, coro: Coroutine[Any, Any, Any], done: Callable[[BaseException | None, Any], None]
    ) -> None:
        """Schedule ``coro``; call ``done(exc, value)`` from the loop thread when it ends."""
        loop = self._ensure_loop()
        fut = asyncio.run_coroutine_threadsafe(coro, loop)

        def finished(f: Any) -> None:
            try:
                value = f.result()
            except BaseException as exc:
                done(exc, None)
            else:
                done(None, value)

        fut.add_done_callback(finished)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name=self._name, daemon=True).start()
                self._loop = loop
            return self._loop

    def shutdown(self) -> None:
        """Stop the loop (pending coroutines are abandoned: their tasks' leases will expire)."""
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where an engine claims from: a queue, and for the ``local`` queue the run it executes."""

    queue: str
    for_run_id: UUID | None = None


@dataclass
class _InFlight:
    """A claimed task between claim and flush, as the loop and the lease thread see it."""

    task: ClaimedTask
    lease_seconds: int
    next_renewal: float
    abandoned: bool = False
    claimed_at: float = field(default_factory=time.monotonic)


@dataclass
class _Result:
    """A finished handler's outcome, waiting for the next flush."""

    task: ClaimedTask
    ok: bool
    value: Any  # the output when ok (serialised: a Jsonb), else the error text
    # When a flush of this result met a row lock held by another session (lock_timeout), it is
    # retried alone from retry_at on (monotonic), backing off, so it cannot stall the loop.
    retry_at: float = 0.0
    backoff: float = 0.0


@dataclass
class EngineStats:
    """Counters of what an engine did (for logs, tests and the CLI)."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    stale: int = 0
    abandoned: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


def _is_connection_error(exc: BaseException) -> bool:
    """Tell a lost or broken connection (reconnect and retry) from an error in the request."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError | psycopg.InterfaceError):
            return True
        seen = seen.__cause__
    return False


def _sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of ``exc`` (or of the psycopg error it wraps)."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "code", None)
        if isinstance(code, str):
            return code
        seen = seen.__cause__
    return None


class _Engine:
    """Claim → run → flush for a set of sources, with leases and wake-ups (see the module doc).

    Driven by one thread calling :meth:`run` (the loop thread); every other method is safe to
    call from any thread.
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

        self._extra_channels = list(extra_channels)
        self._listen_conninfo = listen_conninfo
        self._on_notify = on_notify
        self._channel_source = {f"workflow_q_{s.queue}": s for s in self.sources}

        self._lock = threading.Lock()
        self._wake = threading.Event()  # something to do for the loop thread
        self._lease_wake = threading.Event()  # new in-flight task, or stopping
        self._stopped = threading.Event()  # listener and lease threads should exit
        self._in_flight: dict[tuple[int, int], _InFlight] = {}
        self._results: queue_mod.SimpleQueue[_Result] = queue_mod.SimpleQueue()
        self._unflushed: list[_Result] = []
        self._maybe_more: dict[Source, bool] = {s: True for s in self.sources}
        self._conn: psycopg.Connection[Any] | None = None
        self._listen_conn: psycopg.Connection[Any] | None = None
        self._backoff = _BACKOFF_START
        self._next_connect_at = 0.0
        self._pool = _DaemonPool(concurrency, f"sw-handler-{worker_id}")
        self._async = _AsyncRunner(f"sw-async-{worker_id}")
        self._lease_thread = threading.Thread(
            target=self._lease_loop, name=f"sw-lease-{worker_id}", daemon=True
        )
        self._rotate = 0

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, LISTEN (before returning, so no later notification is missed), start threads.

        Raises if the database cannot be reached at all: a worker that cannot connect at start
        is misconfigured, and ``execute`` must not start a run it cannot watch.
        """
        self._listen_conn = self._open_listener()
        try:
            self._conn = self.client.connect_dedicated()
        except BaseException:
            self._listen_conn.close()
            raise
        threading.Thread(target=self._listen_loop, name=f"sw-listen-{self.worker_id}",
                         daemon=True).start()
        self._lease_thread.start()

    def close(self) -> None:
        """Stop the helper threads and close every connection (in-flight handlers are left)."""
        self._stopped.set()
        self._lease_wake.set()
        # Not the listener: it may sit up to a second in notifies(); it sees _stopped and
        # closes its own connection (closing it from here would race with that wait).
        if self._lease_thread.is_alive():
            self._lease_thread.join(timeout=5)
        self._pool.shutdown()
        self._async.shutdown()
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass
        self._conn = None

    def wake(self) -> None:
        """Make the loop thread look for work now."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """How many claimed tasks are not flushed yet (running or waiting for the flush)."""
        with self._lock:
            return len(self._in_flight)

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
                self._flush_and_claim()
            self.flush()
            if until():
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if claiming():
                self._claim_all()
            wait = next_poll - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if self._conn is None or self._unflushed:
                wait = min(wait, max(0.0, self._next_connect_at - now))
            self._wake.wait(max(0.0, wait))
            self._wake.clear()
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_interval
                with self._lock:
                    for s in self._maybe_more:
                        self._maybe_more[s] = True
                if on_poll is not None:
                    on_poll()

    def _connection(self) -> psycopg.Connection[Any] | None:
        """Return the loop's connection, reconnecting with exponential back-off when lost."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        now = time.monotonic()
        if now < self._next_connect_at:
            return None
        try:
            self._conn = self.client.connect_dedicated()
        except Exception as exc:
            self._conn = None
            self._next_connect_at = now + self._backoff
            log.warning("worker %s: cannot reconnect (%s); retrying in %.1f s",
                        self.worker_id, exc, self._backoff)
            self._backoff = min(self._backoff * 2, _BACKOFF_CAP)
            return None
        self.stats.reconnects += 1
        log.info("worker %s: reconnected to the database", self.worker_id)
        self._backoff = _BACKOFF_START
        with self._lock:  # notifications may have been missed while we were away
            for s in self._maybe_more:
                self._maybe_more[s] = True
        return self._conn

    def _lost_connection(self, exc: BaseException) -> None:
        log.warning("worker %s: lost the database connection: %s", self.worker_id, exc)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # pragma: no cover
                pass
        self._conn = None
        self._next_connect_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_CAP)

    def _claim_all(self) -> None:
        """Claim from every source that may have work, up to the free capacity."""
        n = len(self.sources)
        self._rotate = (self._rotate + 1) % n  # fairness between queues when capacity is short
        for i in range(n):
            src = self.sources[(self._rotate + i) % n]
            conn = self._connection()
            if conn is None:
                return
            with self._lock:
                free = self.concurrency - len(self._in_flight)
                if free <= 0:
                    return
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
                with self._lock:
                    self._maybe_more[src] = True
                if _is_connection_error(exc):
                    self._lost_connection(exc)
                    return
                raise
            if len(tasks) >= qty:
                # A full batch: more may be waiting, so claim again as soon as a slot frees.
                with self._lock:
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
        entry = _InFlight(task, lease, time.monotonic() + lease * self.lease_renew_fraction)
        with self._lock:
            self._in_flight[(task.task_id, task.attempt)] = entry
        self._lease_wake.set()
        if handler is None:
            log.error("worker %s: task %s (%s/%s): %s", self.worker_id, task.task_id,
                      task.flow_slug, task.step_slug, error)
            self._finish(task, False, error)
            return
        arg = task.item if handler.is_map else task.input
        if isinstance(arg, UndecodableJson):
            self._finish(task, False, f"step {task.step_slug!r}: {arg.reason}")
            return
        fn = handler.fn
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        ):
            try:
                coro = fn(arg)
            except Exception as exc:
                self._finish(task, False, format_error(exc))
                return
            self._async.submit(coro, lambda exc, value: self._done(task, exc, value))
        else:
            self._pool.submit(lambda: self._run_sync(task, fn, arg))

    def _run_sync(self, task: ClaimedTask, fn: Callable[[Any], Any], arg: Any) -> None:
        """Run a sync handler on a pool thread (a returned awaitable is awaited on the loop)."""
        try:
            value = fn(arg)
        except BaseException as exc:
            self._done(task, exc, None)
            return
        if inspect.isawaitable(value):
            aw = value

            async def await_it() -> Any:
                return await aw

            self._async.submit(await_it(), lambda exc, v: self._done(task, exc, v))
            return
        self._done(task, None, value)

    def _done(self, task: ClaimedTask, exc: BaseException | None, value: Any) -> None:
        if exc is not None:
            if not isinstance(exc, Exception):
                log.warning("worker %s: task %s raised %s", self.worker_id, task.task_id,
                            type(exc).__name__)
            self._finish(task, False, format_error(exc))
            return
        body, problem = _serialise_output(task.step_slug, value)
        if problem is not None:
            self._finish(task, False, problem)
        else:
            self._finish(task, True, body)

    def _finish(self, task: ClaimedTask, ok: bool, value: Any) -> None:
        """Queue a result for the next flush and wake the loop thread (any thread)."""
        self._results.put(_Result(task, ok, value))
        self._wake.set()

    def _collect(self) -> None:
        """Move the results handlers finished so far to ``_unflushed``."""
        while True:
            try:
                self._unflushed.append(self._results.get_nowait())
            except queue_mod.Empty:
                return

    def _linger(self) -> None:
        """Wait (at most ``_LINGER``) for unfinished tasks claimed in the last ``_LINGER`` s.

        Called once something finished; see ``_LINGER`` for why. Every finished task sets
        ``_wake``, so this returns as soon as the last of them is in. Clearing ``_wake`` here
        loses nothing: the loop claims and checks ``until()`` right after the flush anyway, and
        notifications are kept in ``_maybe_more``.
        """
        while True:
            finished = {(r.task.task_id, r.task.attempt) for r in self._unflushed}
            with self._lock:
                newest = max((e.claimed_at for key, e in self._in_flight.items()
                              if key not in finished), default=None)
            if newest is None:
                return
            left = newest + _LINGER - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(left)
            self._wake.clear()
            self._collect()

    def _flush_and_claim(self) -> None:
        """Report finished results and claim more in ONE transaction: one commit, not two.

        Every writing call costs a commit, and a commit waits for the WAL to reach the disk (a
        few ms here, far more than the SQL itself for a batch of ten). Sending the completions
        and the next claims together halves those waits, and the claims see the tasks that the
        completions just made ready (own writes), so the next step of a chain is claimed in the
        same transaction instead of after a notification and a second round trip. Every source
        is claimed from, since the completions may have enqueued work on any of them.

        Any error other than a lost connection rolls the transaction back as a whole (nothing
        is recorded or started) and leaves the results to :meth:`flush`, whose per-call path
        retries deadlocks and isolates a result the server refuses. Results are recorded, and
        claimed tasks started, only after the commit succeeded.
        """
        pending = self._pending_results()
        if not pending:
            return
        conn = self._connection()
        if conn is None:
            return
        done = [r for r in pending if r.ok]
        failed = [r for r in pending if not r.ok]
        with self._lock:
            # The results being reported free their slots when this commits.
            free = self.concurrency - len(self._in_flight) + len(pending)
        claimed: list[ClaimedTask] = []
        try:
            with conn.transaction():
                conn.execute(f"set local lock_timeout = '{_FLUSH_LOCK_TIMEOUT}'")
                completed = (
                    self.client.complete_tasks(
                        [(r.task.task_id, r.task.attempt, r.value) for r in done], conn=conn)
                    if done else {}
                )
                failures = (
                    self.client.fail_tasks(
                        [(r.task.task_id, r.task.attempt, r.value) for r in failed], conn=conn)
                    if failed else {}
                )
                for src in self.sources:
                    qty = min(free - len(claimed), self.batch_size)
                    if qty <= 0:
                        break
                    got = self.client.claim_tasks(
                        src.queue, qty, worker_id=self.worker_id, resources=self.resources,
                        for_run_id=src.for_run_id, conn=conn,
                    )
                    if len(got) >= qty:
                        with self._lock:
                            self._maybe_more[src] = True
                    claimed.extend(got)
        except Exception as exc:
            if _is_connection_error(exc):
                self._lost_connection(exc)
            # else: rolled back; flush() reports the results one call at a time
            return
        if done:
            self._record(done, completed, completing=True)
        if failed:
            self._record(failed, failures, completing=False)
        for task in claimed:
            self._start(task)

    def _pending_results(self) -> list[_Result]:
        """Collect finished results (lingering briefly, see ``_LINGER``); drop abandoned ones."""
        self._collect()
        if not self._unflushed:
            return []
        self._linger()
        pending: list[_Result] = []
        now = time.monotonic()
        for r in self._unflushed:
            if r.retry_at > now:  # set aside after meeting a held lock; kept, not yet retried
                continue
            with self._lock:
                entry = self._in_flight.get((r.task.task_id, r.task.attempt))
            if entry is not None and entry.abandoned:
                log.warning("worker %s: discarding the result of task %s attempt %s: its lease"
                            " was lost (it will be, or was, run again)", self.worker_id,
                            r.task.task_id, r.task.attempt)
                self._forget([r])
                continue
            pending.append(r)
        self._unflushed = [r for r in self._unflushed if r in pending or r.retry_at > now]
        return pending

    def flush(self) -> None:
        """Report every finished result: one complete_tasks and one fail_tasks call per batch."""
        pending = self._pending_results()
        if not pending:
            return
        conn = self._connection()
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
            if _is_connection_error(exc):
                # Keep what was not reported; it is retried on the new connection (a result
                # whose lease expired meanwhile is then reported stale: the task is redelivered).
                self._lost_connection(exc)
                return
            raise

    def _report(self, conn: psycopg.Connection[Any], batch: list[_Result], *,
                completing: bool) -> None:
        """Send one batch; retry deadlocks, and split a batch the server refuses outright."""
        for attempt in range(5):
            try:
                with conn.transaction():
                    conn.execute(f"set local lock_timeout = '{_FLUSH_LOCK_TIMEOUT}'")
                    if completing:
                        verdicts: dict[int, Any] = self.client.complete_tasks(
                            [(r.task.task_id, r.task.attempt, r.value) for r in batch],
                            conn=conn)
                    else:
                        verdicts = self.client.fail_tasks(
                            [(r.task.task_id, r.task.attempt, r.value) for r in batch],
                            conn=conn)
            except Exception as exc:
                if _is_connection_error(exc):
                    raise
                if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                    self._locked(conn, batch, completing=completing)
                    return
                if _sqlstate(exc) in _RETRYABLE_SQLSTATES and attempt < 4:
                    time.sleep(0.01 * 2**attempt)
                    continue
                self._refused(conn, batch, exc, completing=completing)
                return
            self._record(batch, verdicts, completing=completing)
            return

    def _locked(self, conn: psycopg.Connection[Any], batch: list[_Result], *,
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
        r.backoff = min(max(r.backoff * 2, _LOCKED_RETRY_START), _LOCKED_RETRY_CAP)
        r.retry_at = time.monotonic() + r.backoff
        log.warning("worker %s: reporting task %s waits on a row lock held by another session"
                    " (run %s); retrying in %.0f s", self.worker_id, r.task.task_id,
                    r.task.run_id, r.backoff)

    def _refused(self, conn: psycopg.Connection[Any], batch: list[_Result], exc: BaseException,
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
        self.stats.errors.append(msg)
        if completing:
            log.error("worker %s: the output of task %s was refused: %s", self.worker_id,
                      r.task.task_id, msg)
            bad = _Result(r.task, False, f"step {r.task.step_slug!r}: its output was refused by"
                          f" the database: {msg}")
            self._report(conn, [bad], completing=False)
        else:
            log.error("worker %s: could not report the failure of task %s: %s", self.worker_id,
                      r.task.task_id, msg)
            self._forget([r])

    def _record(self, batch: list[_Result], verdicts: dict[int, Any], *, completing: bool) -> None:
        for r in batch:
            v = verdicts.get(r.task.task_id)
            if completing:
                if v:
                    self.stats.completed += 1
                else:
                    self.stats.stale += 1
                    log.info("worker %s: completion of task %s attempt %s was stale (the task"
                             " was claimed again or its run ended)", self.worker_id,
                             r.task.task_id, r.task.attempt)
            elif v == "stale":
                self.stats.stale += 1
            else:
                self.stats.failed += 1
                log.info("worker %s: task %s (%s/%s) attempt %s failed (%s): %s",
                         self.worker_id, r.task.task_id, r.task.flow_slug, r.task.step_slug,
                         r.task.attempt, v, str(r.value).splitlines()[0] if r.value else "")
        self._forget(batch)

    def _forget(self, batch: Iterable[_Result]) -> None:
        ids = {(r.task.task_id, r.task.attempt) for r in batch}
        self._unflushed = [r for r in self._unflushed
                           if (r.task.task_id, r.task.attempt) not in ids]
        with self._lock:
            for key in ids:
                self._in_flight.pop(key, None)
        self._wake.set()  # a slot freed: claim again if more may be waiting

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

    # ----- the listener thread ---------------------------------------------------------------

    def _channels(self) -> list[str]:
        return list(self._channel_source) + self._extra_channels

    def _open_listener(self) -> psycopg.Connection[Any]:
        if self._listen_conninfo is not None:
            conn = psycopg.connect(self._listen_conninfo, autocommit=True)
        else:
            conn = self.client.connect_dedicated()
        for channel in self._channels():
            conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
        return conn

    def _listen_loop(self) -> None:
        """Turn notifications into wake-ups; reconnect (and re-LISTEN) when the connection dies."""
        backoff = _BACKOFF_START
        while not self._stopped.is_set():
            conn = self._listen_conn
            try:
                if conn is None or conn.closed:
                    conn = self._listen_conn = self._open_listener()
                    backoff = _BACKOFF_START
                    # Anything notified while we were away is unknown: look everywhere.
                    with self._lock:
                        for s in self._maybe_more:
                            self._maybe_more[s] = True
                    if self._on_notify is not None:
                        self._on_notify("", "")
                    self._wake.set()
                for n in conn.notifies(timeout=1.0):
                    src = self._channel_source.get(n.channel)
                    if src is not None:
                        with self._lock:
                            self._maybe_more[src] = True
                    elif self._on_notify is not None:
                        self._on_notify(n.channel, n.payload)
                    self._wake.set()
            except Exception as exc:
                if self._stopped.is_set():
                    break
                log.warning("worker %s: listener connection lost (%s); reconnecting in %.1f s",
                            self.worker_id, exc, backoff)
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # pragma: no cover
                        pass
                self._listen_conn = None
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_CAP)
        if self._listen_conn is not None:
            self._listen_conn.close()

    # ----- the lease thread ------------------------------------------------------------------

    def _lease_loop(self) -> None:
        """Extend the leases of in-flight tasks when due; abandon those the database refuses."""
        conn: psycopg.Connection[Any] | None = None
        backoff = _BACKOFF_START
        while not self._stopped.is_set():
            now = time.monotonic()
            with self._lock:
                live = [e for e in self._in_flight.values() if not e.abandoned]
            due = [e for e in live if e.next_renewal <= now]
            if due:
                try:
                    if conn is None or conn.closed:
                        conn = self.client.connect_dedicated()
                    self._extend(conn, due)
                    backoff = _BACKOFF_START
                except Exception as exc:
                    log.warning("worker %s: lease renewal failed (%s); retrying in %.1f s",
                                self.worker_id, exc, backoff)
                    if conn is not None:
                        try:
                            conn.close()
                        except Exception:  # pragma: no cover
                            pass
                    conn = None
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, _BACKOFF_CAP)
                    continue
                with self._lock:
                    live = [e for e in self._in_flight.values() if not e.abandoned]
            nxt = min((e.next_renewal for e in live), default=now + 1.0)
            self._lease_wake.wait(max(0.01, min(1.0, nxt - time.monotonic())))
            self._lease_wake.clear()
        if conn is not None:
            conn.close()

    def _extend(self, conn: psycopg.Connection[Any], due: list[_InFlight]) -> None:
        by_length: dict[int, list[_InFlight]] = {}
        for e in due:
            by_length.setdefault(e.lease_seconds, []).append(e)
        for seconds, entries in by_length.items():
            verdicts = self.client.extend_leases(
                [(e.task.task_id, e.task.attempt) for e in entries], seconds, conn=conn)
            now = time.monotonic()
            for e in entries:
                e.next_renewal = now + seconds * self.lease_renew_fraction
                if not verdicts.get(e.task.task_id, False):
                    with self._lock:
                        still_here = (e.task.task_id, e.task.attempt) in self._in_flight
                        if still_here:
                            e.abandoned = True
                    if still_here:
                        self.stats.abandoned += 1
                        log.warning("worker %s: lost the lease of task %s attempt %s (%s/%s):"
                                    " its result will be discarded", self.worker_id,
                                    e.task.task_id, e.task.attempt, e.task.flow_slug,
                                    e.task.step_slug)


# --------------------------------------------------------------------------------------------
# The public Worker
# --------------------------------------------------------------------------------------------


def default_worker_id() -> str:
    """Return ``host:pid:random``: unique per process, and readable in ``tasks.worker_id``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def import_modules(modules: Iterable[str]) -> None:
    """Import the modules that define workflows, so their handlers are registered here.

    The current directory is put on ``sys.path`` first, as ``python -m`` would, so that
    ``singularity-workflow worker -i my_app.flows`` finds the project it is started in.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    for name in modules:
        importlib.import_module(name)


class Worker:
    """Serve one or more queues: claim tasks, run their handlers, report the results.

    ``client_or_database`` is a :class:`Client`, or anything a Client accepts (a connection
    string, a psycopg connection or pool; ``None`` = ``DATABASE_URL``). The worker opens three
    dedicated connections of its own (claims and flushes, LISTEN, lease renewal), so a given
    connection or pool is only used to find the server. ``resources`` are what this worker
    offers (``("gpu",)``): it claims only tasks whose step needs a subset of them.
    ``concurrency`` bounds the tasks held at once (sync and async together); ``batch_size``
    (default: ``concurrency``) bounds one claim. ``imports`` are modules imported by
    :meth:`run` so that their workflows' handlers are registered.

    Behind pgbouncer in transaction mode: give a client that does not prepare statements
    (``Client(bouncer_url, prepare_threshold=None)``, unless pgbouncer >= 1.21 has
    ``max_prepared_statements``) and ``listen_database``, a connection string that reaches
    PostgreSQL directly (or through a session-mode pool), for the LISTEN connection only.

    Handlers are found in the workflow registry by (flow, step). A task whose handler is not
    registered here fails with a clear error (and is retried, maybe by a worker that has it).
    """

    def __init__(
        self,
        client_or_database: Client | Any = None,
        queues: Sequence[str] = ("default",),
        *,
        resources: Sequence[str] = (),
        concurrency: int = 10,
        batch_size: int | None = None,
        poll_interval: float = 5.0,
        lease_renew_fraction: float = 0.5,
        worker_id: str | None = None,
        shutdown_grace: float = 30.0,
        imports: Sequence[str] = (),
        listen_database: str | None = None,
    ) -> None:
        if isinstance(queues, str):
            queues = (queues,)
        if not queues:
            raise ValueError("a worker needs at least one queue")
        if "local" in queues:
            raise ValueError("the 'local' queue is served by execute(), not by workers")
        # A client the worker made itself is closed when it stops; one given to it is the
        # caller's to close.
        self._owns_client = not isinstance(client_or_database, Client)
        self.client = (
            client_or_database if isinstance(client_or_database, Client)
            else Client(client_or_database)
        )
        self.queues = tuple(dict.fromkeys(queues))
        self.resources = tuple(resources)
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease_renew_fraction = lease_renew_fraction
        self.worker_id = worker_id or default_worker_id()
        self.shutdown_grace = shutdown_grace
        self.imports = tuple(imports)
        self.listen_database = listen_database
        self._stop = threading.Event()
        self._hurry = threading.Event()  # second signal: do not wait for in-flight tasks
        self._started = threading.Event()
        self._engine: _Engine | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def stats(self) -> EngineStats | None:
        """What the worker did so far (None before it started)."""
        return self._engine.stats if self._engine is not None else None

    def stop(self, *, wait_for_tasks: bool = True) -> None:
        """Stop claiming; let in-flight tasks finish within ``shutdown_grace``; end run()."""
        if not wait_for_tasks:
            self._hurry.set()
        self._stop.set()
        if self._engine is not None:
            self._engine.wake()

    def run(self) -> None:
        """Serve until :meth:`stop` or SIGTERM/SIGINT; return after the graceful shutdown.

        In the main thread, SIGTERM and SIGINT start the shutdown (a second one skips the wait
        for in-flight tasks). The loop itself runs in its own thread, so that a signal handler
        never interrupts it half-way through a flush.
        """
        in_main = threading.current_thread() is threading.main_thread()
        previous: dict[int, Any] = {}
        if in_main:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            t = self.run_in_thread()
            while t.is_alive():
                t.join(0.2)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self._error is not None:
            raise self._error

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            log.warning("worker %s: second signal: stopping without waiting for tasks",
                        self.worker_id)
            self.stop(wait_for_tasks=False)
        else:
            log.info("worker %s: %s received: finishing in-flight tasks (up to %.0f s)",
                     self.worker_id, signal.Signals(signum).name, self.shutdown_grace)
            self.stop()

    def run_in_thread(self) -> threading.Thread:
        """Start serving in a daemon thread and return it once connected and listening."""
        if self._thread is not None:
            raise RuntimeError("this worker was already started")
        import_modules(self.imports)
        engine = _Engine(
            self.client,
            [Source(q) for q in self.queues],
            RegistryResolver(self.client),
            resources=self.resources,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
            poll_interval=self.poll_interval,
            lease_renew_fraction=self.lease_renew_fraction,
            worker_id=self.worker_id,
            listen_conninfo=self.listen_database,
        )
        engine.start()
        self._engine = engine
        self._thread = threading.Thread(target=self._serve, name=f"sw-worker-{self.worker_id}",
                                        daemon=True)
        self._thread.start()
        self._started.set()
        return self._thread

    def _maintain(self) -> None:
        """Run the engine's housekeeping (``workflow.maintain``) once per poll tick.

        It cancels runs past their deadline and refreshes the hot tables' statistics when they
        went stale (servers with autovacuum off, or bursts it has not caught up with). The
        database does the work; every worker calling it means no cron job or reaper process is
        needed. It is cheap when there is nothing to do and safe from many workers at once. A
        failure here (database away) is logged and retried on the next tick; it never stops
        the worker.
        """
        try:
            result = self.client.maintain()
        except Exception as exc:  # the loop's own reconnect logic reports outages
            log.debug("worker %s: maintain failed: %s", self.worker_id, exc)
            return
        if result.get("cancelled_runs"):
            log.info("worker %s: cancelled %d run(s) past their deadline",
                     self.worker_id, result["cancelled_runs"])

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a worker started with :meth:`run_in_thread` to end; True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        engine = self._engine
        assert engine is not None
        log.info("worker %s: serving queues %s (resources %s, concurrency %d)", self.worker_id,
                 ", ".join(self.queues), ", ".join(self.resources) or "none", self.concurrency)
        try:
            engine.run(until=self._stop.is_set, on_poll=self._maintain)
            engine.drain(self.shutdown_grace, skip=self._hurry.is_set)
        except BaseException as exc:
            self._error = exc
            log.exception("worker %s: stopped by an unexpected error", self.worker_id)
        finally:
            engine.close()
            if self._owns_client:
                self.client.close()
            log.info("worker %s: stopped (%d completed, %d failed, %d stale)", self.worker_id,
                     engine.stats.completed, engine.stats.failed, engine.stats.stale)
