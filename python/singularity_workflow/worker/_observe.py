"""What the engine adds around each handler call: its span, its duration, its log fields.

:meth:`Observer.wrap` is the one hook of the claim loop (``Engine._start``): the handler it
returns, called in the handler's thread (or as a coroutine on the async loop),

* binds the task's log fields (``run_id``, ``flow``, ``step``, ``attempt``, ``task_id``,
  ``worker_id``) for every line logged during the call (:mod:`singularity_workflow._logging`);
* counts the call's seconds in ``EngineStats.handler_seconds`` (per flow, step, outcome), which
  the worker's ``/metrics`` serves (:func:`worker_families`);
* when tracing is enabled (:mod:`singularity_workflow._tracing`), runs inside the task's span,
  a child of the run's stored trace context. Those contexts are read from the database once per
  run a worker has not seen (:class:`RunInfoCache`): by the loop thread right after the claim,
  on the claim's connection and in its transaction (:meth:`Observer.claimed`, one short read
  per claim with new runs), or, if that failed, by the handler's thread before it starts.

A failure of any of this is logged and never fails the task.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import psycopg

from singularity_workflow import _logging as slog
from singularity_workflow import _tracing as tracing
from singularity_workflow._client import ClaimedTask, Client
from singularity_workflow._metrics import Family
from singularity_workflow._operations.observe import RunTraceInfo, run_trace_info
from singularity_workflow.worker._state import EngineStats

__all__ = ["Observer", "RunInfoCache", "worker_families"]

log = logging.getLogger("singularity_workflow.worker")


class RunInfoCache:
    """The trace contexts (with version and step queues) of runs, fetched in batches, bounded.

    ``want(run_id)`` (loop thread, at claim) notes a run; ``get(run_id)`` (handler thread)
    returns its info, fetching every wanted run not yet known in one query first. At most
    ``size`` runs are kept, oldest dropped. A failed fetch is logged and gives no parent.
    """

    def __init__(self, fetch: Callable[[Sequence[UUID]], dict[UUID, RunTraceInfo]],
                 size: int = 10_000) -> None:
        self._fetch = fetch
        self._size = size
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._known: OrderedDict[UUID, RunTraceInfo] = OrderedDict()
        self._wanted: set[UUID] = set()

    def unknown(self, run_ids: Sequence[UUID]) -> list[UUID]:
        """Return the runs among ``run_ids`` whose info is not known yet."""
        with self._lock:
            return [r for r in dict.fromkeys(run_ids) if r not in self._known]

    def store(self, found: dict[UUID, RunTraceInfo], asked: Sequence[UUID]) -> None:
        """Keep fetched infos (a run asked for and not found: no context)."""
        with self._lock:
            for rid in asked:
                self._known[rid] = found.get(rid, (None, None, {}))
                self._wanted.discard(rid)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def want(self, run_id: UUID) -> None:
        """Note a run whose info a handler thread will ask for."""
        with self._lock:
            if run_id not in self._known:
                self._wanted.add(run_id)

    def get(self, run_id: UUID) -> RunTraceInfo | None:
        """Return a run's info (fetching the wanted runs first); None if it cannot be read."""
        with self._lock:
            found = self._known.get(run_id)
        if found is not None:
            return found
        with self._fetching:  # one fetch at a time: the others find their run in its answer
            with self._lock:
                found = self._known.get(run_id)
                if found is not None:
                    return found
                ids = list(self._wanted | {run_id})
                self._wanted.clear()
            try:
                got = self._fetch(ids)
            except Exception as exc:
                log.warning("tracing: could not read the trace context of %d run(s): %s",
                            len(ids), exc)
                return None
            self.store(got, ids)
            with self._lock:
                return self._known.get(run_id)


class Observer:
    """Wraps handlers with a span, their timing and their log fields (see the module doc)."""

    def __init__(self, client: Client, stats: EngineStats, worker_id: str) -> None:
        self.client = client
        self.stats = stats
        self.worker_id = worker_id
        self.runs = RunInfoCache(lambda ids: client.call(run_trace_info(ids)))

    def claimed(self, tasks: Sequence[ClaimedTask], conn: psycopg.Connection[Any]) -> None:
        """Read the trace contexts of the claimed tasks' new runs on the claim's connection.

        Called by the loop thread right after a claim (inside the flush's transaction when
        there is one): one short read for every run not seen yet, so that the handler threads
        need not make a round trip of their own before they start. Only when tracing is
        enabled; never raises (a failure is logged, and the handler thread reads again).
        """
        if not tasks or not tracing.enabled():
            return
        ids = self.runs.unknown([t.run_id for t in tasks])
        if not ids:
            return
        try:
            self.runs.store(self.client.call(run_trace_info(ids), conn=conn), ids)
        except Exception as exc:
            log.warning("tracing: could not read the trace context of %d run(s): %s",
                        len(ids), exc)

    def wrap(self, task: ClaimedTask, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Return ``fn`` observed; a coroutine function exactly when ``fn`` is one."""
        traced = tracing.enabled()
        span: tracing.TaskSpan | None = None
        if traced:
            self.runs.want(task.run_id)
            span = tracing.TaskSpan(f"workflow.task {task.flow_slug}.{task.step_slug}", {
                "workflow.run_id": str(task.run_id), "workflow.flow": task.flow_slug,
                "workflow.step": task.step_slug, "workflow.attempt": task.attempt,
                "workflow.task_id": task.task_id, "workflow.task_index": task.task_index,
                "workflow.worker": self.worker_id,
            })
        fields = slog.task_fields(task, worker_id=self.worker_id)

        def begin() -> float:
            if span is not None:
                self._open(task, span)
            return time.monotonic()

        def finish(started: float, error: BaseException | None) -> None:
            self.stats.handler_seconds.observe(time.monotonic() - started, task.flow_slug,
                                               task.step_slug, "ok" if error is None else "error")
            if span is not None:
                try:
                    span.end(error)
                except Exception as exc:  # tracing never fails a task
                    log.warning("tracing: could not end the span of task %s: %s", task.task_id,
                                exc, extra=fields)

        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        ):
            async def observed_async(arg: Any) -> Any:
                token = slog.bind(fields)
                started = begin()
                try:
                    value = await fn(arg)
                except BaseException as exc:
                    finish(started, exc)
                    raise
                finally:
                    slog.unbind(token)
                finish(started, None)
                return value
            return observed_async

        def observed(arg: Any) -> Any:
            token = slog.bind(fields)
            started = begin()
            try:
                value = fn(arg)
            except BaseException as exc:
                finish(started, exc)
                raise
            finally:
                slog.unbind(token)
            finish(started, None)
            return value
        return observed

    def _open(self, task: ClaimedTask, span: tracing.TaskSpan) -> None:
        """Open the task's span under its run's stored context (never raises)."""
        try:
            info = self.runs.get(task.run_id)
            parent = None
            if info is not None:
                carrier, version, queues = info
                span.attributes["workflow.version"] = version
                span.attributes["workflow.queue"] = queues.get(task.step_slug)
                span.attributes = {k: v for k, v in span.attributes.items() if v is not None}
                parent = tracing.parent_of(carrier, task.run_id)
            span.start(parent)
        except Exception as exc:
            log.warning("tracing: could not start the span of task %s: %s", task.task_id, exc,
                        extra=slog.task_fields(task))


def worker_families(stats: EngineStats, worker_id: str, in_flight: int) -> list[Family]:
    """Return the worker's own metrics as Prometheus families (its ``/metrics``)."""
    label = {"worker_id": worker_id}
    counters = (
        ("claimed", stats.claimed, "Tasks this worker claimed."),
        ("completed", stats.completed, "Task completions the database accepted."),
        ("failed", stats.failed, "Task failures the database accepted (retried or final)."),
        ("stale", stats.stale, "Reports the database ignored (the attempt had been superseded)."),
        ("timed_out", stats.timed_out, "Attempts failed by their step's timeout."),
    )
    out = []
    for name, value, text in counters:
        f = Family(f"singularity_workflow_worker_tasks_{name}_total", text, "counter")
        f.add(value, label)
        out.append(f)
    f = Family("singularity_workflow_worker_reconnects_total",
               "Times the worker's loop connection was opened again after a loss.", "counter")
    f.add(stats.reconnects, label)
    out.append(f)
    f = Family("singularity_workflow_worker_in_flight_tasks",
               "Tasks claimed and not yet reported.", "gauge")
    f.add(in_flight, label)
    out.append(f)
    out.append(stats.handler_seconds.family())
    out.append(stats.flush_batch_size.family())
    return out
