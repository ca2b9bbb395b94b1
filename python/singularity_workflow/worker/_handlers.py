"""What the engine needs to know about a step's handler, how it finds it, how results are shaped.

A claimed task names its (flow, step); a :data:`Resolver` turns that into a
:class:`StepHandler` (the function, whether it gets a map element, the step's lease length) or
raises :class:`HandlerNotFound`, which fails the task with a clear message. Workers resolve
through the process-wide workflow registry (:class:`RegistryResolver`); ``execute`` binds one
definition (:func:`def_resolver`). The handler's outcome becomes what the flush sends: an output
serialised once (:func:`serialise_output`), or an error text (:func:`format_error`).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from psycopg.types.json import Jsonb

from singularity_workflow._client import ClaimedTask, Client, to_jsonb
from singularity_workflow.definitions import WorkflowDef, find_handler, registry
from singularity_workflow.definitions._typed import TypedIO

__all__ = [
    "HandlerNotFound",
    "RegistryResolver",
    "Resolver",
    "StepHandler",
    "def_resolver",
    "format_error",
    "handler_from_def",
    "serialise_output",
]

#: A step's error text is stored in a row; a runaway traceback should not bloat it.
MAX_ERROR_CHARS: Final = 16_000


@dataclass(frozen=True)
class StepHandler:
    """How to run one step's tasks: its function, its shape, and its lease length.

    ``is_map``: the handler receives the task's map element instead of the input dict.
    ``timeout``: the step's timeout in seconds: it bounds each attempt, and is the lease's
    length (renewed every ``timeout * lease_renew_fraction``); ``None`` when unknown: then no
    bound, and the lease is estimated from the one the claim returned. ``context``: how the
    handler takes a :class:`StepContext` (``POSITIONAL``, a keyword name, or None: it does not).
    ``typed``: how its input is parsed and its output serialised (typed I/O), None for plain.
    """

    fn: Callable[..., Any]
    is_map: bool
    timeout: int | None
    context: str | None = None
    typed: TypedIO | None = None


class HandlerNotFound(LookupError):
    """No handler for a claimed task's (flow, step) in this process; the task is failed."""


#: Finds the handler of a claimed task, or raises :class:`HandlerNotFound`.
Resolver = Callable[[ClaimedTask], StepHandler]


def handler_from_def(defn: WorkflowDef, step_slug: str) -> StepHandler:
    """Build the :class:`StepHandler` of ``step_slug`` from a workflow's definition."""
    try:
        sdef = defn.step(step_slug)
    except KeyError:
        raise HandlerNotFound(
            f"flow {defn.slug!r} as defined in this process has no step {step_slug!r}: the"
            " run was started by a different version of the code (deploy the same code to"
            f" the workers; steps here: {', '.join(s.name for s in defn.steps)})"
        ) from None
    return StepHandler(defn.handler(step_slug), sdef.type == "map", sdef.timeout, sdef.context,
                       sdef.typed)


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
            known = ", ".join(sorted(registry)) or "none"
            raise HandlerNotFound(
                f"no handler for step {task.step_slug!r} of flow {task.flow_slug!r} in this"
                " worker: no flow of that slug is defined in this process. Either the module"
                " that defines it was not imported (`singularity-workflow worker -i"
                " my_app.workflows`), or it is defined under another slug (set `slug` on the"
                f" class; flows defined here: {known})"
            )
        if not defn.handlers_only:
            return handler_from_def(defn, task.step_slug)
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
        sdef = defn.step(task.step_slug)
        return StepHandler(fn, s.get("type") == "map", s.get("timeout"), sdef.context,
                           sdef.typed)


def def_resolver(defn: WorkflowDef) -> Resolver:
    """Return a resolver bound to one workflow definition (what ``execute`` uses for its run)."""

    def resolve(task: ClaimedTask) -> StepHandler:
        if task.flow_slug != defn.slug:
            raise HandlerNotFound(f"task of flow {task.flow_slug!r} claimed for {defn.slug!r}")
        return handler_from_def(defn, task.step_slug)

    return resolve


def format_error(exc: BaseException) -> str:
    """Render a handler's exception as the task's error: ``ExcType: message`` then the traceback."""
    head = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc))
    text = f"{head}\n\n{tb}"
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 40] + "\n... (error text truncated)"
    return text


def serialise_output(step_slug: str, value: Any) -> tuple[Jsonb | None, str | None]:
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
