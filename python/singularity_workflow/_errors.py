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
    "EventPayloadTooLarge",
    "InvalidCondition",
    "InvalidEvent",
    "NotAWaitStep",
    "ResumeStepNotFound",
    "StepNotWaiting",
    "UnknownConditionStep",
    "UnknownEvent",
    "DependencyCycle",
    "DuplicateStep",
    "EmptyFlow",
    "ExtensionMissing",
    "FlowExists",
    "FlowInUse",
    "FlowNotFound",
    "FlowShapeMismatch",
    "InvalidInput",
    "InvalidKeyPath",
    "InvalidLimit",
    "InvalidName",
    "InvalidOption",
    "InvalidState",
    "NonScalarKey",
    "LocalStepsNeedOwner",
    "MetricsPortInUse",
    "NonRetryableError",
    "PayloadTooLarge",
    "RunFailed",
    "RunIdConflict",
    "RunNotFound",
    "RunTimeout",
    "SchemaNotInstalled",
    "SelfDependency",
    "StepNotFound",
    "TaskGraphNotFound",
    "UnknownDependency",
    "VersionInUse",
    "VersionNotFound",
    "VersionRetired",
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
    server's primary message (or ours); ``hint`` is the hint worded for Python (see
    ``python_hint``; the server's own wording stays in ``sql_hint``). ``str()`` is the message
    and, on a second line, the hint, so a traceback shows both; ``describe()`` adds the code.
    """

    #: The SQLSTATE of this class of error; instances may carry a different one (DefinitionError).
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        sql_hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: str | None = code if code is not None else self.default_code
        self.hint = hint
        self.sql_hint = sql_hint if sql_hint is not None else hint

    def describe(self) -> str:
        """Return ``message (SQLSTATE code)`` plus the hint on a second line, for humans."""
        text = self.message
        if self.code:
            text += f" (SQLSTATE {self.code})"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message

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
    """WF014: a payload exceeds a size limit (for example NOTIFY's 8000 bytes).

    Also raised for PostgreSQL's own limits on a value (SQLSTATE 54000, program_limit_exceeded,
    for example a jsonb value over 255 MiB); ``code`` is then ``54000`` and the hint names the
    limit (docs/errors.md lists them).
    """

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


class SchemaNotInstalled(WorkflowError):
    """The database has no ``workflow`` schema: ``singularity-workflow migrate`` installs it.

    ``code`` is PostgreSQL's SQLSTATE (``3F000`` invalid_schema_name, or ``42P01`` for a read of
    one of its tables); ``database`` names the database. The CLI shows it as one ``error:``
    line; a worker exits with status 3.
    """

    def __init__(self, database: str | None = None, *, code: str | None = "3F000") -> None:
        where = f" in {database}" if database else ""
        super().__init__(
            f"the workflow schema is not installed{where}: run `singularity-workflow migrate`",
            code=code,
            hint="`singularity-workflow migrate` (or Client.install()) installs it; see"
            " docs/operations.md",
        )
        self.database = database
class InvalidLimit(WorkflowError):
    """WF023: a concurrency limit below 1, or a limit scope that does not exist."""

    default_code = "WF023"


class InvalidKeyPath(WorkflowError):
    """WF024: a concurrency key path that is missing, malformed or given to a non-key limit."""

    default_code = "WF024"


class NonScalarKey(WorkflowError):
    """WF025: a run input holds an object or an array at its flow's concurrency key path."""

    default_code = "WF025"


class StepNotFound(WorkflowError):
    """WF026: a step limit names a step that does not exist (``<flow_slug>.<step_slug>``)."""

    default_code = "WF026"
class VersionNotFound(WorkflowError):
    """WF020: the flow has no version with that number (get_flow, start_flow(version=...))."""

    default_code = "WF020"


class VersionRetired(WorkflowError):
    """WF021: the flow version is retired: it starts no new runs (its runs in flight finish)."""

    default_code = "WF021"


class VersionInUse(WorkflowError):
    """WF022: the version cannot be retired or deleted: it is the current one, or runs use it."""

    default_code = "WF022"
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


class InvalidEvent(WorkflowError):
    """WF031: ``send_event`` got a malformed event name, an empty or over-long key, a bad keep.

    The keep must be 1 s to 365 days. Nothing is sent.
    """

    default_code = "WF031"


class UnknownEvent(WorkflowError):
    """WF032: no wait step of any flow waits for that event name. Nothing is sent.

    Refused rather than kept for nobody, so that a typo fails loudly.
    """

    default_code = "WF032"


class EventPayloadTooLarge(WorkflowError):
    """WF033: an event payload over 1 MiB as JSON text. Nothing is sent."""

    default_code = "WF033"


class NotAWaitStep(WorkflowError):
    """WF034: ``approve`` / ``reject`` name a step that is not a wait step of the run's flow."""

    default_code = "WF034"


class StepNotWaiting(WorkflowError):
    """WF035: ``approve`` / ``reject`` a wait step that has ended, or of a run that has ended.

    A decision is taken once: a second approve of a completed step is refused.
    """

    default_code = "WF035"


class InvalidCondition(WorkflowError):
    """WF036: a step's condition is not one of the documented shapes (docs/control-flow.md).

    An unknown op, a missing or misplaced value, a path that is not field names, nesting deeper
    than 8 or more than 64 comparisons. Nothing is registered.
    """

    default_code = "WF036"


class UnknownConditionStep(WorkflowError):
    """WF037: a step's condition reads a step that is not one of its dependencies."""

    default_code = "WF037"


class ResumeStepNotFound(WorkflowError):
    """WF038: ``resume_from_step`` names a step the run's flow version does not have."""

    default_code = "WF038"


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
        InvalidLimit,
        InvalidKeyPath,
        NonScalarKey,
        StepNotFound,
        VersionNotFound,
        VersionRetired,
        VersionInUse,
        InvalidCron,
        UnknownTimeZone,
        ScheduleNotFound,
        KeyConflict,
        InvalidEvent,
        UnknownEvent,
        EventPayloadTooLarge,
        NotAWaitStep,
        StepNotWaiting,
        InvalidCondition,
        UnknownConditionStep,
        ResumeStepNotFound,
    )
    if cls.default_code is not None
}


def error_class_for(code: str | None) -> type[WorkflowError]:
    """Return the exception class for a WF SQLSTATE (WorkflowError for an unknown WF code)."""
    return _BY_CODE.get(code or "", WorkflowError)


#: Hints the SQL functions word for SQL callers, reworded for Python, keyed by (SQLSTATE, the
#: server's hint). The SQL stays as it is (psql users read it there); a hint not listed is
#: shown as the server sent it, which is right for every hint that names no SQL syntax.
_PYTHON_HINTS: dict[tuple[str, str], str] = {
    ("WF013", "Pass force => true to mark it cancelled anyway."): (
        "Pass force=True (cancel_workflow_run(run_id, force=True)) to mark it cancelled anyway."
    ),
    ("WF010", "For example workflow.prune(interval '7 days')."): (
        "Pass a positive interval, for example `select workflow.prune(interval '7 days')`."
    ),
}

#: PostgreSQL's limits that SQLSTATE 54000 (program_limit_exceeded) reports for a value the
#: engine stores, by a word of the server's message; docs/errors.md lists the same numbers.
_VALUE_LIMITS: tuple[tuple[str, str], ...] = (
    ("jsonb", "a jsonb value holds at most 268435455 bytes (255 MiB) of data"),
    ("string", "a jsonb string holds at most 268435455 bytes (255 MiB)"),
)
_FIELD_LIMIT = "PostgreSQL stores at most 1 GB in one field (a jsonb value: 255 MiB)"


def python_hint(code: str, hint: str | None) -> str | None:
    """Return the Python wording of the server's ``hint`` for ``code`` (the hint itself if none)."""
    if hint is None:
        return None
    return _PYTHON_HINTS.get((code, hint), hint)


def _schema_missing(exc: psycopg.Error) -> bool:
    """Tell whether ``exc`` says the ``workflow`` schema (or one of its tables) does not exist.

    A call of ``workflow.f()`` in a database without the schema is 3F000 (invalid_schema_name);
    a read of ``workflow.t`` there is 42P01 (undefined_table), as is a table missing from a
    schema that was never fully installed. Undefined *functions* (42883) are not counted: a
    wrong argument type gives that too.
    """
    message = exc.diag.message_primary or str(exc)
    if exc.sqlstate == "3F000":
        # pgmq is installed with the schema (migrate installs both), so its absence is the same.
        return '"workflow"' in message or '"pgmq"' in message
    if exc.sqlstate == "42P01":
        return 'relation "workflow.' in message
    return False


def error_from_psycopg(exc: BaseException, database: str | None = None) -> WorkflowError | None:
    """Translate a psycopg error this package documents; None for any other error.

    Translated: a ``WF`` SQLSTATE (its class, hint worded for Python), a missing ``workflow``
    schema (:class:`SchemaNotInstalled`, naming ``database``) and a value over one of
    PostgreSQL's limits (54000: :class:`PayloadTooLarge` with the limit). Other errors
    (connection loss, deadlocks, constraint violations) are not the engine's documented errors
    and are left to propagate as psycopg raised them.
    """
    if not isinstance(exc, psycopg.Error):
        return None
    code = exc.sqlstate
    if code is None:
        return None
    diag = exc.diag
    message = diag.message_primary or str(exc)
    if code.startswith("WF"):
        sql_hint = diag.message_hint
        return error_class_for(code)(
            message, code=code, hint=python_hint(code, sql_hint), sql_hint=sql_hint
        )
    if _schema_missing(exc):
        return SchemaNotInstalled(database, code=code)
    if code == "54000":  # program_limit_exceeded
        limit = next((text for word, text in _VALUE_LIMITS if word in message), _FIELD_LIMIT)
        return PayloadTooLarge(
            message,
            code=code,
            hint=f"{limit}; store large data elsewhere (a file, an object store) and pass its key",
        )
    return None


class LocalStepsNeedOwner(WorkflowError):
    """WF019: a run of a flow with local steps was started (or retried) without an owner.

    Local steps run only in the process that executes the run; without an owner nothing would
    ever run them. Use ``execute()`` / ``execute_dynamic()`` (``execute_retry()`` for a retry),
    or mark the steps distributed.
    """

    default_code = "WF019"


_BY_CODE[LocalStepsNeedOwner.default_code] = LocalStepsNeedOwner


class MetricsPortInUse(WorkflowError):
    """WF046: a metrics endpoint (a worker's ``--metrics-port``) cannot bind its port.

    Raised in Python when the worker starts, before it claims anything; no SQL function raises
    it. ``port`` and ``host`` say what was asked; the cause is the ``OSError`` of the bind.
    """

    default_code = "WF046"

    def __init__(self, port: int, host: str, cause: OSError) -> None:
        super().__init__(
            f"metrics_port {port} on {host} is not available: {cause.strerror or cause}",
            hint="Another process (or another worker on this host) serves that port: give each"
            " worker its own --metrics-port, or 0 for any free port.",
        )
        self.port = port
        self.host = host


class NonRetryableError(Exception):
    """Raise it from a handler for a failure that retrying cannot change (bad data, a refusal).

    The task fails at once, whatever attempts are left, and so do its step and run; any other
    exception is retried by the step's ``max_attempts``. ``raise NonRetryableError("...") from
    exc`` keeps the cause in the stored traceback. Not a ``WorkflowError``: it is the handler's
    own error, never raised by the engine.
    """
