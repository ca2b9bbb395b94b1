"""The public :class:`Worker`: serve queues until stopped, with a graceful shutdown.

A Worker is an :class:`~singularity_workflow.worker._engine.Engine` over named queues that finds
handlers in the process-wide registry, run in a thread of its own, plus what a process needs:
signal handling (SIGTERM/SIGINT finish in-flight tasks, a second one stops at once), importing
the modules that define workflows, and the engine's housekeeping (``workflow.maintain``) every
poll interval on a thread and connection of its own (``_housekeeping``), off the claim loop.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Iterable, Sequence
from types import FrameType
from typing import Any

from psycopg import sql

from singularity_workflow._client import Client
from singularity_workflow._metrics import Family, MetricsServer, render, serve_metrics
from singularity_workflow.definitions import WorkflowDef, discover, registry
from singularity_workflow.worker._engine import DEFAULT_MAX_WRITTEN_OFF, Engine
from singularity_workflow.worker._handlers import RegistryResolver
from singularity_workflow.worker._housekeeping import Housekeeper
from singularity_workflow.worker._observe import worker_families
from singularity_workflow.worker._registration import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    Handlers,
    Registration,
)
from singularity_workflow.worker._state import EngineStats, Source

__all__ = ["EXIT_STUCK_HANDLERS", "VersionedHandlers", "Worker", "WorkerStuck",
           "default_worker_id", "import_modules", "registered_handlers"]

log = logging.getLogger("singularity_workflow.worker")


#: The exit status of a worker process that stopped because too many handler threads were stuck
#: past their step's timeout (EX_TEMPFAIL: a supervisor should start it again).
EXIT_STUCK_HANDLERS = 75


class WorkerStuck(SystemExit):
    """Raised by :meth:`Worker.run` when more handler threads than ``max_written_off`` are stuck.

    A ``SystemExit`` (status :data:`EXIT_STUCK_HANDLERS`, 75), so that a process serving with
    ``Worker.run()`` (or ``singularity-workflow worker``) exits non-zero unless it catches it,
    and its supervisor (systemd, Kubernetes) starts a fresh one: threads cannot be killed, and
    a process full of stuck ones only gets slower. ``reason`` says how many were stuck.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(EXIT_STUCK_HANDLERS)
        self.reason = reason

    def __str__(self) -> str:
        return f"worker stopped: {self.reason}"


def default_worker_id() -> str:
    """Return ``host:pid:random``: unique per process, and readable in ``tasks.worker_id``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def import_modules(modules: Iterable[str]) -> None:
    """Import the modules that define workflows, so their handlers are registered here.

    Both forms are found: ``Workflow`` subclasses, and classes (or the module itself) with
    ``__workflow_steps__``.

    The current directory is put on ``sys.path`` first, as ``python -m`` would, so that
    ``singularity-workflow worker -i my_app.flows`` finds the project it is started in.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    for name in modules:
        # Workflow subclasses register themselves on import; list-form classes need a look.
        discover(importlib.import_module(name))


def registered_handlers() -> Handlers:
    """Return ``{flow_slug: [step_slug, ...]}`` of every step this process has a handler for."""
    return {slug: [s.name for s in defn.steps] for slug, defn in registry.items()}


class VersionedHandlers:
    """What a worker advertises: its steps per flow version its code is.

    A flow whose definition this process holds (a ``Workflow`` class, the list form) is served
    only in the version of that shape: ``{flow: {shape_hash: [steps]}}``, so during a rolling
    deploy an old worker never takes a task of the new shape, nor a new worker one of the old.
    The hash comes from the database (``workflow.flow_shape_hash``, the one place it is
    computed), once per definition. A flow known only by its handlers (``register_handlers``,
    ``execute_dynamic``) has no shape here and is served in any version: ``{flow: [steps]}``.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._hashes: dict[str, tuple[WorkflowDef, str]] = {}

    def __call__(self) -> Handlers:
        found: dict[str, Any] = {}
        for slug, defn in list(registry.items()):
            steps = [s.name for s in defn.steps]
            if defn.handlers_only:
                found[slug] = steps
                continue
            known = self._hashes.get(slug)
            if known is None or known[0] is not defn:
                known = (defn, self._client.flow_shape_hash(defn.definition()))
                self._hashes[slug] = known
            found[slug] = {known[1]: steps}
        return found


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

    A step's ``timeout`` bounds each attempt: past it the attempt fails (and is retried by the
    step's policy); an ``async def`` handler is cancelled, a sync one cannot be, so its thread
    is written off and replaced. With more than ``max_written_off`` threads stuck at once the
    worker stops and :meth:`run` raises :class:`WorkerStuck` (exit status 75).

    Handlers are found in the workflow registry by (flow, step). The worker registers itself
    (``register_worker``) with exactly the steps it has handlers for, in the flow versions its
    definitions are (see :class:`VersionedHandlers`), so it never claims a task it cannot run:
    that task waits for a worker that can. ``handlers`` overrides what it advertises
    (``{flow: [steps]}`` for any version, ``{flow: {shape_hash: [steps]}}`` for those versions).
    It heartbeats every third of ``heartbeat_timeout`` seconds from a thread of its own and
    deregisters when it stops; a
    worker that stops heartbeating (killed, frozen) is dead for the engine after
    ``heartbeat_timeout``, and its leases are released at once.

    ``metrics_port``: serve the worker's own Prometheus metrics at
    ``http://metrics_host:metrics_port/metrics`` (tasks claimed, completed, failed, handler
    seconds, flush batch sizes, reconnects; docs/observability.md); 0 picks a free port
    (``metrics_address``). A port in use raises :class:`MetricsPortInUse` when it starts.
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
        heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT,
        max_written_off: int = DEFAULT_MAX_WRITTEN_OFF,
        handlers: Handlers | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
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
        self.heartbeat_timeout = heartbeat_timeout
        self.max_written_off = max_written_off
        self.handlers = handlers
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self._metrics: MetricsServer | None = None
        self._registration: Registration | None = None
        self._housekeeper: Housekeeper | None = None
        self._stop = threading.Event()
        self._hurry = threading.Event()  # second signal: do not wait for in-flight tasks
        self._started = threading.Event()
        self._vacuuming = threading.Event()  # a VACUUM thread of maintain()'s advice is running
        self._engine: Engine | None = None
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
        if self.metrics_port is not None:
            # Bound first: a port in use is an error at start (MetricsPortInUse), not later.
            self._metrics = serve_metrics(self.metrics_port, self._render_metrics,
                                          host=self.metrics_host)
        registration = Registration(
            self.client, self.worker_id, queues=self.queues, resources=self.resources,
            handlers=(VersionedHandlers(self.client) if self.handlers is None
                      else lambda: self.handlers),
            heartbeat_timeout=self.heartbeat_timeout,
        )
        engine = Engine(
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
            max_written_off=self.max_written_off,
        )
        try:
            engine.start()
        except BaseException:
            self._close_metrics()
            raise
        try:
            registration.start()  # before the first claim, so the claims filter by handlers
        except BaseException:
            engine.close()
            self._close_metrics()
            raise
        self._registration = registration
        self._engine = engine
        self._housekeeper = Housekeeper(self.client, self.poll_interval,
                                        worker_id=self.worker_id, before=registration.refresh,
                                        after=self._vacuum_if_advised)
        self._housekeeper.start()
        self._thread = threading.Thread(target=self._serve, name=f"sw-worker-{self.worker_id}",
                                        daemon=True)
        self._thread.start()
        self._started.set()
        return self._thread

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """The (host, port) the worker's ``/metrics`` listens on, once started (None: off)."""
        return None if self._metrics is None else (str(self._metrics.host), self._metrics.port)

    def metric_families(self) -> list[Family]:
        """Return the worker's counters and histograms (what its ``/metrics`` shows).

        Empty until the worker started. For OpenTelemetry:
        ``export_families(worker.metric_families)`` (the ``otel`` extra).
        """
        engine = self._engine
        if engine is None:
            return []
        return worker_families(engine.stats, self.worker_id, engine.in_flight)

    def _render_metrics(self) -> str:
        """Render the worker's ``/metrics`` body: its counters and histograms (worker/_observe)."""
        return render(self.metric_families())

    def _close_metrics(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    def _vacuum_if_advised(self, result: dict[str, Any]) -> None:
        """Start the VACUUMs ``maintain()`` advised (its ``vacuum`` list), one thread at a time.

        Called by the housekeeper after each ``maintain`` call. The VACUUMs run in a thread of
        their own so that the housekeeper's next sweep is not held up by them.
        """
        if result.get("vacuum") and not self._vacuuming.is_set():
            self._vacuuming.set()
            threading.Thread(target=self._vacuum, args=(list(result["vacuum"]),),
                             name=f"sw-vacuum-{self.worker_id}", daemon=True).start()

    def _vacuum(self, tables: list[str]) -> None:
        """VACUUM the hot tables ``maintain()`` named (only where autovacuum is off).

        VACUUM cannot run inside a function or a transaction, so maintain returns the list and
        the worker runs it in a thread, on a connection of its own, in autocommit. SKIP_LOCKED:
        a table that another worker (or autovacuum) is vacuuming is skipped rather than waited
        for. The names come from the server already quoted (``format('%I.%I')``). Measured
        (bench/pressure.py on a server with autovacuum off): without it, dead rows of the hot
        tables only grow.
        """
        try:
            with self.client.connect_dedicated() as conn:
                for table in tables:
                    conn.execute(sql.SQL("vacuum (skip_locked) {}").format(sql.SQL(table)))
        except Exception as exc:  # housekeeping only: retried on the next tick
            log.debug("worker %s: vacuum failed: %s", self.worker_id, exc)
        finally:
            self._vacuuming.clear()

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
            engine.run(until=self._stop.is_set)
            engine.drain(self.shutdown_grace, skip=self._hurry.is_set)
            if engine.fatal is not None:
                self._error = WorkerStuck(engine.fatal)
        except BaseException as exc:
            self._error = exc
            log.exception("worker %s: stopped by an unexpected error", self.worker_id)
        finally:
            if self._housekeeper is not None:
                self._housekeeper.stop()
            engine.close()
            if self._registration is not None:
                # After the last flush: what is still held is released for other workers now.
                self._registration.stop()
            if self._owns_client:
                self.client.close()
            self._close_metrics()
            log.info("worker %s: stopped (%d completed, %d failed, %d stale)", self.worker_id,
                     engine.stats.completed, engine.stats.failed, engine.stats.stale)
