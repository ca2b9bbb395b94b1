"""OpenTelemetry tracing of runs and tasks, when the ``otel`` extra is installed.

Nothing here imports OpenTelemetry unless it is installed (``pip install
'singularity-workflow[otel]'``), and nothing is traced unless the application set a tracer
provider (``opentelemetry.trace.set_tracer_provider``) with the exporters it wants: the engine
sends nothing anywhere by itself. Without either, every function below is a cheap no-op.

The shape of a run's trace:

* **enqueue**: starting a run (``start_flow`` / ``start_flows``, so ``execute`` too) makes a
  short ``workflow.enqueue <flow>`` span (kind PRODUCER), a child of the caller's current span
  when there is one, and stores its W3C trace context with the run (``runs.trace_context``);
* **task**: each execution of a task, on any worker or in the executing process, is a
  ``workflow.task <flow>.<step>`` span (kind CONSUMER), a child of that enqueue span, from its
  claim to its handler's end, with the run, flow, version, step, attempt, queue and worker as
  attributes, a ``claimed`` event, a ``handler.start`` event and a ``completed`` or ``failed``
  event; an exception is recorded on it and sets its status to ERROR.

So a run executed by ``execute()`` in one process and by workers in others is one trace. A
stored context that cannot be read (edited by hand, from another tool) is ignored with a
warning: the task span is then a root span, and the task runs as always.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final

__all__ = [
    "ATTRIBUTE_PREFIX",
    "TaskSpan",
    "enabled",
    "enqueue_context",
    "installed",
    "parent_of",
]

log = logging.getLogger("singularity_workflow.tracing")

#: The prefix of the span attributes this package sets.
ATTRIBUTE_PREFIX: Final = "workflow."
_TRACER_NAME: Final = "singularity_workflow"

_api: tuple[ModuleType, ModuleType] | None = None
_looked = False


def _otel() -> tuple[ModuleType, ModuleType] | None:
    """Import ``opentelemetry.trace`` and ``.propagate`` once, if installed; else None."""
    global _api, _looked
    if not _looked:
        _looked = True
        if importlib.util.find_spec("opentelemetry") is not None:
            try:
                trace = importlib.import_module("opentelemetry.trace")
                propagate = importlib.import_module("opentelemetry.propagate")
                _api = (trace, propagate)
            except ImportError:  # a broken or partial install: no tracing, as without it
                _api = None
    return _api


def installed() -> bool:
    """Tell whether the OpenTelemetry API is importable."""
    return _otel() is not None


def enabled() -> bool:
    """Tell whether spans would go anywhere: the API is installed and a provider is set."""
    api = _otel()
    if api is None:
        return False
    trace = api[0]
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def enqueue_context(flow_slug: str, runs: int = 1) -> dict[str, str] | None:
    """Make the short enqueue span of a start and return its context to store (or None).

    Called when a start operation is built (the caller's thread, so the caller's current span
    is the parent). None when tracing is not enabled.
    """
    if not enabled():
        return None
    api = _otel()
    assert api is not None
    trace, propagate = api
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(
        f"workflow.enqueue {flow_slug}", kind=trace.SpanKind.PRODUCER,
        attributes={"workflow.flow": flow_slug, "workflow.runs": runs},
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    return carrier or None


def parent_of(carrier: Any, run_id: object) -> Any:
    """Return the OpenTelemetry context of a stored trace context (None: no parent).

    A carrier that is not an object of strings, or whose ``traceparent`` does not parse, is
    ignored with a warning naming the run: the task's span is then a root span.
    """
    api = _otel()
    if api is None or carrier is None:
        return None
    trace, propagate = api
    try:
        if not isinstance(carrier, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in carrier.items()
        ):
            raise ValueError(f"not an object of strings: {str(carrier)[:80]}")
        ctx = propagate.extract(dict(carrier))
        if not trace.get_current_span(ctx).get_span_context().is_valid:
            raise ValueError(f"no valid traceparent in {str(carrier)[:80]}")
        return ctx
    except Exception as exc:
        log.warning("run %s: ignoring its stored trace context: %s", run_id, exc,
                    extra={"run_id": str(run_id)})
        return None


class TaskSpan:
    """The span of one task execution; created at claim, opened in the handler's thread.

    ``attributes`` are set on it; :meth:`start` opens it (start time: the claim) with the
    parent from :func:`parent_of`, :meth:`end` closes it with the outcome. Every method is
    safe to call when tracing is disabled (it then does nothing).
    """

    def __init__(self, name: str, attributes: Mapping[str, Any]) -> None:
        self.name = name
        self.attributes = {k: v for k, v in attributes.items() if v is not None}
        self.claimed_ns = time.time_ns()
        self._span: Any = None
        self._token: Any = None

    def start(self, parent: Any) -> None:
        """Open the span (as the current span of this thread or task) under ``parent``."""
        api = _otel()
        if api is None:
            return
        trace = api[0]
        context = importlib.import_module("opentelemetry.context")
        tracer = trace.get_tracer(_TRACER_NAME)
        self._span = tracer.start_span(self.name, context=parent, kind=trace.SpanKind.CONSUMER,
                                       attributes=self.attributes, start_time=self.claimed_ns)
        self._span.add_event("claimed", timestamp=self.claimed_ns)
        self._span.add_event("handler.start")
        self._token = context.attach(trace.set_span_in_context(self._span))

    def end(self, error: BaseException | None) -> None:
        """Close the span: a ``completed`` event, or the exception recorded and status ERROR."""
        span = self._span
        if span is None:
            return
        api = _otel()
        assert api is not None
        trace = api[0]
        context = importlib.import_module("opentelemetry.context")
        try:
            if error is None:
                span.add_event("completed")
            else:
                span.record_exception(error)
                span.add_event("failed", {"exception.type": type(error).__name__})
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:200]))
        finally:
            span.end()
            if self._token is not None:
                try:
                    context.detach(self._token)
                except Exception:  # detached in another context (an awaitable handed on)
                    pass
            self._span = None
