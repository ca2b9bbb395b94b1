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
    "FlowVersion",
    "LeaseRenewal",
    "MissedPolicy",
    "OrderBy",
    "QueueMetrics",
    "RegisteredVersion",
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

    ``status`` is ``created`` (waiting on dependencies), ``started``, ``completed``, ``failed``
    or ``skipped``; ``type`` is ``single``, ``map`` or ``wait`` (waits for an event);
    ``tasks`` is the number of tasks (None before the step started; a map step has one per
    element), ``attempts`` the highest attempt count of its tasks.
    ``waiting_for_worker`` is True while the step has tasks left that no live registered worker
    can take (no worker serves its queue with its handler and resources; for a local step: the
    process executing the run is gone). The tasks stay queued and run once such a worker comes.
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
    waiting_for_worker: bool = False
    #: The limits holding its queued tasks back now ({"kind", "scope", "name", "key", "in_use",
    #: "max", "per_seconds", "ahead"}); empty when none.
    waiting_on_limits: list[dict[str, Any]] = field(default_factory=list)
    #: A wait step that waits: {"event", "key", "since", "timeout_at"} (the key send_event
    #: must quote); None otherwise.
    waiting_for_event: dict[str, Any] | None = None
    #: While a step sleeps (its sleep option): when its tasks become claimable.
    sleeping_until: datetime | None = None

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
            waiting_for_worker=bool(data.get("waiting_for_worker")),
            waiting_on_limits=list(data.get("waiting_on_limits") or []),
            waiting_for_event=data.get("waiting_for_event"),
            sleeping_until=_timestamp(data.get("sleeping_until")),
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
    one retries. ``version`` / ``version_hash``: the flow version the run is pinned to (its
    number and shape hash; None from a server older than flow versions).
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
    version: int | None = None
    version_hash: str | None = None
    #: Steps skipped by a condition (counted in ``completed_steps`` as done).
    skipped_steps: int = 0
    #: A run made by ``resume_from_step``: the step it was resumed from, and the reason given.
    resumed_from: str | None = None
    resume_reason: str | None = None

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
            skipped_steps=int(data.get("skipped_steps") or 0),
            resumed_from=data.get("resumed_from"),
            resume_reason=data.get("resume_reason"),
            version=None if data.get("version") is None else int(data["version"]),
            version_hash=data.get("version_hash"),
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

    @property
    def waiting_for_worker(self) -> list[str]:
        """The steps (in flow order) whose tasks wait for a worker that can run them."""
        return [s.step for s in self.steps if s.waiting_for_worker]

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
class QueueMetrics:
    """One (queue, flow) row of ``workflow.metrics``: its tasks now and over a window.

    Now: ``ready`` (claimable), ``waiting_on_limits`` (under a full concurrency or rate limit),
    ``delayed`` (backoff, start delay), ``paused`` (paused runs), ``running`` (claimed),
    ``oldest_ready_seconds``. Over the window: ``completed``, ``failed`` (for good), claim
    latency (ready to first claim) and duration (claim to completion) percentiles in seconds,
    None when nothing was measured.
    """

    queue: str
    flow_slug: str
    ready: int
    waiting_on_limits: int
    delayed: int
    paused: int
    running: int
    completed: int
    failed: int
    oldest_ready_seconds: float | None
    claim_latency_p50_seconds: float | None
    claim_latency_p95_seconds: float | None
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One registered worker, as ``workflow.list_workers`` reports it.

    ``queues`` and ``resources`` are what it serves; ``handlers`` the steps it can run, as
    ``{flow_slug: [step_slug, ...]}`` (None: it runs any step of its queues); ``alive`` is
    False once it stopped or its last heartbeat is older than ``heartbeat_timeout_seconds``.
    """

    worker_id: str
    host: str | None
    pid: int | None
    queues: tuple[str, ...] | None
    resources: tuple[str, ...]
    handlers: Any
    version: str | None
    started_at: datetime | None
    heartbeat_at: datetime | None
    heartbeat_timeout_seconds: int | None
    stopped_at: datetime | None
    alive: bool

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> WorkerInfo:
        """Build from one row of ``list_workers`` (columns in field order)."""
        (worker_id, host, pid, queues, resources, handlers, version, started_at, heartbeat_at,
         timeout, stopped_at, alive) = row
        return cls(
            worker_id=worker_id,
            host=host,
            pid=pid,
            queues=None if queues is None else tuple(queues),
            resources=tuple(resources or ()),
            handlers=handlers,
            version=version,
            started_at=started_at,
            heartbeat_at=heartbeat_at,
            heartbeat_timeout_seconds=timeout,
            stopped_at=stopped_at,
            alive=bool(alive),
        )

    @property
    def handler_count(self) -> int | None:
        """How many steps it has handlers for (None: it did not say, so any step of its queues)."""
        if not isinstance(self.handlers, dict):
            return None
        return sum(len(steps) for steps in self.handlers.values())

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the columns of ``workflow.list_workers``)."""
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


@dataclass(frozen=True, slots=True)
class LeaseRenewal:
    """What ``renew_leases`` answers for one task attempt.

    ``extended`` False: stop, the attempt is no longer ours (its result would be ignored).
    ``run_paused`` True: the run is paused; the lease was still extended (a paused run's
    running tasks may finish), and the handler's context reads ``cancelled`` meanwhile.
    """

    extended: bool
    run_paused: bool


def run_uuid(run_id: UUID | str, name: str = "run_id") -> UUID:
    """Accept a run id as a UUID or its text; TypeError or ValueError naming ``name`` otherwise.

    TypeError for another type (None included), ValueError for text that is not a UUID.
    """
    if isinstance(run_id, UUID):
        return run_id
    if not isinstance(run_id, str):
        raise TypeError(
            f"{name} must be a UUID or its text, not {type(run_id).__name__} {run_id!r:.60}"
        )
    try:
        return UUID(run_id)
    except ValueError:
        raise ValueError(f"{name} must be a UUID or its text, not {run_id!r:.60}") from None


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One version of a flow, as ``workflow.list_flow_versions`` reports it.

    ``shape_hash`` identifies the shape (``workflow.flow_shape_hash``); ``is_current`` marks the
    version a start without a version runs; ``live_runs`` are runs still going, ``total_runs``
    every run not pruned.
    """

    flow_slug: str
    version: int
    shape_hash: str
    is_current: bool
    created_at: datetime
    retired_at: datetime | None
    live_runs: int
    total_runs: int


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """What ``workflow.register_flow_version`` says: the version a definition is, and if it is new.

    A worker puts ``shape_hash`` in its handlers (``{"flow": {"<shape_hash>": [steps]}}``) to
    claim only tasks of the versions its code serves.
    """

    flow_slug: str
    version: int
    shape_hash: str
    created: bool


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
