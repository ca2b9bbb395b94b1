"""Value types of the package: what the client's operations return and take.

A leaf module: it imports nothing of this package, so every layer (the database layer, the
operations, the client, the worker, the CLI, the dashboard) can use these types without
creating a cycle. Runs: :class:`RunStatus` (``workflow.get_run_status``), :class:`StepStatus`,
:class:`WorkflowRun` (``workflow.list_workflow_runs``); tasks: :class:`ClaimedTask`
(``workflow.claim_tasks``) and :class:`UndecodableJson`; schedules: :class:`Schedule` (declared
on a workflow class) and :class:`ScheduleInfo` (``workflow.list_schedules``).

Vocabulary (docs/api-mapping.md): a run's ``status`` is the Elixir library's coarse
``completed`` / ``failed`` / ``in_progress``; its ``state`` is ``scheduled`` / ``running`` /
``paused`` / ``completed`` / ``failed`` / ``cancelled``; the stored status of the ``runs`` table
(``scheduled`` / ``started`` / ``completed`` / ``failed``) is what ``WorkflowRun.status`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

__all__ = [
    "DEFAULT_CANCEL_REASON",
    "ClaimedTask",
    "MissedPolicy",
    "OrderBy",
    "RunStatus",
    "Schedule",
    "ScheduleInfo",
    "StepStatus",
    "UndecodableJson",
    "WorkflowRun",
    "order_by_args",
    "run_uuid",
]

#: The reason recorded when a cancel gives none (the Elixir library's wording).
DEFAULT_CANCEL_REASON: Final = "User requested cancellation"

#: How runs are ordered: ``(direction, column)`` as in the Elixir library
#: (``("desc", "inserted_at")``), or a column name alone (descending).
OrderBy = tuple[str, str] | str

_DIRECTIONS: Final = frozenset({"asc", "desc"})


def _timestamp(value: Any) -> datetime | None:
    """Parse a timestamp of the status JSON (ISO 8601 text, as jsonb writes it)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _uuid(value: Any) -> UUID | None:
    """Parse a run id of the status JSON."""
    if value is None or isinstance(value, UUID):
        return value
    return UUID(str(value))


def _jsonable(value: Any) -> Any:
    """Turn datetimes and UUIDs into the strings the status JSON uses, recursively."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, StepStatus):
        return value.to_dict()
    return value


def order_by_args(order_by: OrderBy) -> tuple[str, str]:
    """Split ``order_by`` into (column, direction) for ``workflow.list_workflow_runs``.

    Names are not checked here: the SQL function whitelists them and raises InvalidOption
    (WF010) for anything else, so the rule lives in one place. Only the shape is checked, and a
    tuple written the other way round, ``("inserted_at", "desc")``, is accepted too.
    """
    if isinstance(order_by, str):
        return order_by, "desc"
    if not isinstance(order_by, tuple | list) or len(order_by) != 2:
        raise TypeError(
            f"order_by must be (direction, column), e.g. ('desc', 'inserted_at'), not {order_by!r}"
        )
    direction, column = (str(part) for part in order_by)
    if direction.lower() not in _DIRECTIONS and column.lower() in _DIRECTIONS:
        direction, column = column, direction
    return column, direction


@dataclass(frozen=True, slots=True)
class StepStatus:
    """One step of a run as ``get_run_status`` reports it.

    ``status`` is ``created`` (waiting on dependencies), ``started``, ``completed`` or
    ``failed``; ``tasks`` is the number of tasks (None before the step started; a map step has
    one per element), ``attempts`` the highest attempt count of its tasks.
    """

    step: str
    status: str
    type: str
    tasks: int | None
    tasks_completed: int | None
    attempts: int | None
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    error: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepStatus:
        """Build from one element of the status JSON's ``steps``."""
        return cls(
            step=data["step"],
            status=data["status"],
            type=data["type"],
            tasks=data.get("tasks"),
            tasks_completed=data.get("tasks_completed"),
            attempts=data.get("attempts"),
            started_at=_timestamp(data.get("started_at")),
            completed_at=_timestamp(data.get("completed_at")),
            failed_at=_timestamp(data.get("failed_at")),
            error=data.get("error"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the shape ``workflow.get_run_status`` returns)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A run's progress and details, as ``workflow.get_run_status`` reports them.

    ``status``: ``completed`` | ``failed`` | ``in_progress`` (the Elixir library's three).
    ``state``: ``running`` | ``paused`` | ``completed`` | ``failed`` | ``cancelled``.
    ``percentage`` is of steps completed (0-100, one decimal). ``error`` and ``failed_step`` say
    why a run failed (for a cancelled run: the reason, and no step). ``retry_of`` is the run this
    one retries.
    """

    run_id: UUID
    flow_slug: str
    status: str
    state: str
    total_steps: int
    completed_steps: int
    percentage: float
    steps: tuple[StepStatus, ...]
    input: Any
    output: Any
    error: str | None
    failed_step: str | None
    retry_of: UUID | None
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    paused_at: datetime | None
    cancelled_at: datetime | None
    deadline_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunStatus:
        """Build from the JSON object ``workflow.get_run_status`` returns."""
        started_at = _timestamp(data["started_at"])
        assert started_at is not None  # runs.started_at is not null
        run_id = _uuid(data["run_id"])
        assert run_id is not None
        return cls(
            run_id=run_id,
            flow_slug=data["flow_slug"],
            status=data["status"],
            state=data["state"],
            total_steps=int(data["total_steps"]),
            completed_steps=int(data["completed_steps"]),
            percentage=float(data["percentage"]),
            steps=tuple(StepStatus.from_json(s) for s in data.get("steps") or ()),
            input=data.get("input"),
            output=data.get("output"),
            error=data.get("error"),
            failed_step=data.get("failed_step"),
            retry_of=_uuid(data.get("retry_of")),
            started_at=started_at,
            completed_at=_timestamp(data.get("completed_at")),
            failed_at=_timestamp(data.get("failed_at")),
            paused_at=_timestamp(data.get("paused_at")),
            cancelled_at=_timestamp(data.get("cancelled_at")),
            deadline_at=_timestamp(data.get("deadline_at")),
        )

    @property
    def finished(self) -> bool:
        """True once the run completed, failed or was cancelled (nothing of it runs any more)."""
        return self.status != "in_progress"

    @property
    def paused(self) -> bool:
        """True while the run is paused."""
        return self.state == "paused"

    @property
    def cancelled(self) -> bool:
        """True if the run was cancelled (on request or by its deadline)."""
        return self.state == "cancelled"

    @property
    def finished_at(self) -> datetime | None:
        """When the run ended (completed or failed), or None while it is in progress."""
        return self.completed_at or self.failed_at

    @property
    def timings(self) -> dict[str, datetime | None]:
        """Return the run's timestamps by name (``started_at`` ... ``deadline_at``)."""
        return {
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "paused_at": self.paused_at,
            "cancelled_at": self.cancelled_at,
            "deadline_at": self.deadline_at,
        }

    def step(self, name: str) -> StepStatus:
        """Return the status of step ``name``; KeyError if the flow has no such step."""
        for s in self.steps:
            if s.step == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the shape ``workflow.get_run_status`` returns)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """One row of ``list_workflow_runs``: a run without its input, output and steps.

    ``status`` is the stored status (``started`` | ``completed`` | ``failed``); ``state`` adds
    ``running`` / ``paused`` / ``cancelled`` as in :class:`RunStatus`. Field order is the column
    order of ``workflow.list_workflow_runs``.
    """

    run_id: UUID
    flow_slug: str
    status: str
    state: str
    remaining_steps: int
    error_message: str | None
    retry_of: UUID | None
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    paused_at: datetime | None
    cancelled_at: datetime | None

    @property
    def finished_at(self) -> datetime | None:
        """When the run ended (completed or failed), or None while it is in progress."""
        return self.completed_at or self.failed_at

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (timestamps ISO 8601, ids as strings)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


class UndecodableJson:
    """Stands for a claimed task's input (or item) that Python cannot decode.

    PostgreSQL accepts JSON nested deeper than Python's json module can read (about 1,000
    levels). Decoding the whole claim at once would then raise in the worker's loop for every
    worker that claims the task; decoded task by task, only that task gets this marker, and
    the worker fails it with ``reason``.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"UndecodableJson({self.reason!r})"


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """One task handed out by ``claim_tasks``; ``attempt`` is the token its report must carry.

    ``input`` is ``{"run": <run input>, "<dependency>": <its output>, ...}``; for a map task
    ``item`` is its element (and ``input`` leaves out the array mapped over), else None. Field
    order is the column order of ``claim_tasks``, so rows unpack straight into it.
    """

    task_id: int
    attempt: int
    run_id: UUID
    flow_slug: str
    step_slug: str
    task_index: int
    input: dict[str, Any]
    item: Any
    lease_expires_at: datetime


def run_uuid(run_id: UUID | str) -> UUID:
    """Accept a run id as a UUID or its text; ValueError for text that is not a UUID."""
    return run_id if isinstance(run_id, UUID) else UUID(str(run_id))


#: What a schedule does with ticks that came due while nobody called the engine.
MissedPolicy = Literal["skip", "once", "each"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule declared on a workflow class; registered with the flow.

    ``cron``: 5 fields (minute hour day-of-month month day-of-week, with ranges, lists, steps,
    ``jan``/``mon`` names) or ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``,
    evaluated in ``timezone`` (an IANA name). ``input`` is every run's input. ``missed``:
    ``skip`` (a tick fires only within a minute of its time), ``once`` (one run for the latest
    missed tick) or ``each`` (every missed tick, the latest ``max_catch_up``). ``name``
    defaults to ``<flow slug>`` for a workflow's first schedule and ``<flow slug>:<n>`` for
    the n-th after it (counting from 1).

    Example::

        class Nightly(Workflow):
            schedules = [Schedule(cron="0 3 * * *", timezone="Europe/Berlin")]
    """

    cron: str
    input: Mapping[str, Any] | list[Any] = field(default_factory=dict)
    timezone: str = "UTC"
    missed: MissedPolicy = "skip"
    max_catch_up: int = 10
    name: str | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """One schedule as ``workflow.list_schedules`` returns it (column order = field order).

    ``next_fire_at`` is the next tick not yet fired (None when disabled); ``last_run_id`` and
    ``last_run_state`` are the run of the latest fired tick; ``last_error`` why that tick could
    not start its run (None when it could).
    """

    schedule_name: str
    flow_slug: str
    cron: str
    timezone: str
    input: Any
    enabled: bool
    missed: str
    max_catch_up: int
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    last_run_id: UUID | None
    last_run_state: str | None
    last_error: str | None
