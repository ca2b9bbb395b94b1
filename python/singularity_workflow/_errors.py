"""The exceptions of singularity-workflow, and their mapping from the server's SQLSTATEs.

The SQL core raises its errors with SQLSTATEs of one project class, ``WF`` (``WF001`` ...
``WF018``, documented beside the functions). Each gets one Python class here, named after what
went wrong, so callers can catch ``FlowNotFound`` rather than compare strings; every instance
still carries the SQLSTATE (``code``), the server's message and its hint, as the server sent them.

Errors found in Python before any SQL runs (an invalid workflow class) are ``DefinitionError``
with the SQLSTATE the server would have used for the same mistake, so a cycle is ``WF005``
whether the client or the server caught it. ``RunTimeout`` and ``RunFailed`` are what waiting on
a run (``execute``) raises.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

__all__ = [
    "DefinitionError",
    "DependencyCycle",
    "DuplicateStep",
    "EmptyFlow",
    "ExtensionMissing",
    "FlowExists",
    "FlowInUse",
    "FlowNotFound",
    "FlowShapeMismatch",
    "InvalidInput",
    "InvalidName",
    "InvalidOption",
    "InvalidState",
    "PayloadTooLarge",
    "RunFailed",
    "RunIdConflict",
    "RunNotFound",
    "RunTimeout",
    "SelfDependency",
    "TaskGraphNotFound",
    "UnknownDependency",
    "WorkflowError",
    "error_class_for",
    "error_from_psycopg",
]


def _rebuild(cls: type[WorkflowError], message: str, state: dict[str, Any]) -> WorkflowError:
    """Recreate a pickled error without calling ``__init__`` (see ``WorkflowError.__reduce__``)."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class WorkflowError(Exception):
    """Base class of every error this package raises on purpose.

    ``code`` is the SQLSTATE (``"WF002"``...) or None for errors that have none; ``message`` is the
    server's primary message (or ours); ``hint`` is the server's hint, when it gave one. ``str()``
    is the message alone; ``describe()`` adds the code and the hint for people.
    """

    #: The SQLSTATE of this class of error; instances may carry a different one (DefinitionError).
    default_code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code: str | None = code if code is not None else self.default_code
        self.hint = hint

    def describe(self) -> str:
        """Return ``message (SQLSTATE code)`` plus the hint on a second line, for humans."""
        text = self.message
        if self.code:
            text += f" (SQLSTATE {self.code})"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, hint={self.hint!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only arguments, which Exception's default pickling (it replays
        # self.args positionally) cannot pass; errors cross process boundaries in workers.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


class InvalidName(WorkflowError):
    """WF001: a flow, step or queue name does not match its pattern."""

    default_code = "WF001"


class FlowNotFound(WorkflowError):
    """WF002: no flow has that slug."""

    default_code = "WF002"


class UnknownDependency(WorkflowError):
    """WF003: a step depends on a step the flow does not have."""

    default_code = "WF003"


class DuplicateStep(WorkflowError):
    """WF004: two steps of one flow share a name."""

    default_code = "WF004"


class DependencyCycle(WorkflowError):
    """WF005: the steps' dependencies form a cycle."""

    default_code = "WF005"


class SelfDependency(WorkflowError):
    """WF006: a step depends on itself."""

    default_code = "WF006"


class FlowShapeMismatch(WorkflowError):
    """WF007: the slug is registered with different steps or options."""

    default_code = "WF007"


class FlowInUse(WorkflowError):
    """WF008: the flow cannot be changed because runs of it exist."""

    default_code = "WF008"


class InvalidInput(WorkflowError):
    """WF009: a run input (or other payload) has the wrong JSON type."""

    default_code = "WF009"


class InvalidOption(WorkflowError):
    """WF010: an argument or step option has a bad value."""

    default_code = "WF010"


class RunNotFound(WorkflowError):
    """WF011: no run has that id."""

    default_code = "WF011"


class RunIdConflict(WorkflowError):
    """WF012: the given run id is already used by a run of another flow."""

    default_code = "WF012"


class InvalidState(WorkflowError):
    """WF013: the run or task is not in a state that allows the operation."""

    default_code = "WF013"


class PayloadTooLarge(WorkflowError):
    """WF014: a payload exceeds a size limit (for example NOTIFY's 8000 bytes)."""

    default_code = "WF014"


class FlowExists(WorkflowError):
    """WF015: a flow with that slug already exists (create_flow)."""

    default_code = "WF015"


class EmptyFlow(WorkflowError):
    """WF016: the flow has no steps."""

    default_code = "WF016"


class TaskGraphNotFound(WorkflowError):
    """WF017: no stored task graph (goal orchestration) has that id."""

    default_code = "WF017"


class ExtensionMissing(WorkflowError):
    """WF018: an optional PostgreSQL extension the call needs is not installed (pg_cron)."""

    default_code = "WF018"


class InvalidCron(WorkflowError):
    """WF027: a cron expression is malformed (which field and why) or never fires."""

    default_code = "WF027"


class UnknownTimeZone(WorkflowError):
    """WF028: a schedule names a time zone PostgreSQL does not know."""

    default_code = "WF028"


class ScheduleNotFound(WorkflowError):
    """WF029: no schedule has that name."""

    default_code = "WF029"


class KeyConflict(WorkflowError):
    """WF030: an idempotency key (or a schedule name) is already used with something else.

    A start with an idempotency key whose window is live and another input; a create_schedule
    with a taken name and another definition. Nothing changes.
    """

    default_code = "WF030"


class DefinitionError(WorkflowError):
    """A workflow definition is invalid; found in Python before anything reached the database.

    ``code`` is the SQLSTATE the server would have raised for the same mistake (WF003 unknown
    dependency, WF004 duplicate step, WF005 cycle, WF001 bad name, WF010 bad option ...).
    """


class RunTimeout(WorkflowError):
    """Waiting for a run took longer than allowed; ``execute`` then cancels the run.

    ``completed_steps`` of ``total_steps`` had finished when the wait gave up.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        run_id: UUID,
        completed_steps: int,
        total_steps: int,
        hint: str | None = None,
    ) -> None:
        if message is None:
            message = (
                f"run {run_id} did not finish in time"
                f" ({completed_steps} of {total_steps} steps completed)"
            )
        super().__init__(message, hint=hint)
        self.run_id = run_id
        self.completed_steps = completed_steps
        self.total_steps = total_steps


class RunFailed(WorkflowError):
    """A run ended in failure: ``step`` (None if the run failed as a whole) raised ``error``."""

    def __init__(
        self,
        message: str | None = None,
        *,
        run_id: UUID,
        step: str | None,
        error: str | None,
        hint: str | None = None,
    ) -> None:
        if message is None:
            where = f" in step {step}" if step else ""
            message = f"run {run_id} failed{where}: {error}"
        super().__init__(message, hint=hint)
        self.run_id = run_id
        self.step = step
        self.error = error


_BY_CODE: dict[str, type[WorkflowError]] = {
    cls.default_code: cls
    for cls in (
        InvalidName,
        FlowNotFound,
        UnknownDependency,
        DuplicateStep,
        DependencyCycle,
        SelfDependency,
        FlowShapeMismatch,
        FlowInUse,
        InvalidInput,
        InvalidOption,
        RunNotFound,
        RunIdConflict,
        InvalidState,
        PayloadTooLarge,
        FlowExists,
        EmptyFlow,
        TaskGraphNotFound,
        ExtensionMissing,
        InvalidCron,
        UnknownTimeZone,
        ScheduleNotFound,
        KeyConflict,
    )
    if cls.default_code is not None
}


def error_class_for(code: str | None) -> type[WorkflowError]:
    """Return the exception class for a WF SQLSTATE (WorkflowError for an unknown WF code)."""
    return _BY_CODE.get(code or "", WorkflowError)


def error_from_psycopg(exc: BaseException) -> WorkflowError | None:
    """Translate a psycopg error raised with a ``WF`` SQLSTATE; None for any other error.

    Other errors (connection loss, deadlocks, constraint violations) are not the engine's
    documented errors and are left to propagate as psycopg raised them.
    """
    if not isinstance(exc, psycopg.Error):
        return None
    code = exc.sqlstate
    if code is None or not code.startswith("WF"):
        return None
    diag = exc.diag
    message = diag.message_primary or str(exc)
    return error_class_for(code)(message, code=code, hint=diag.message_hint)
