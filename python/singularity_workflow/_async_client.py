"""The asyncio client: every operation of ``Client``, awaited. GENERATED, do not edit.

Made by ``scripts/gen_async_client.py`` from ``_client.py`` and the module-level functions of
``_lifecycle``, ``_listen`` and ``_start``; a test fails when this file differs from a fresh run
(``make gen-async``). Connections, the event-loop rule and close are in ``_aio``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

import psycopg

from singularity_workflow._aio import AsyncClientBase, default_for_loop
from singularity_workflow._client import Client
from singularity_workflow._messages import ChannelMessage, WorkflowEvent
from singularity_workflow._operations.limits import LimitUse
from singularity_workflow._operations.runs import DebounceMode
from singularity_workflow._types import (
    DEFAULT_CANCEL_REASON,
    ClaimedTask,
    FlowVersion,
    LeaseRenewal,
    MissedPolicy,
    OrderBy,
    QueueMetrics,
    RegisteredVersion,
    RunStatus,
    ScheduleInfo,
    WorkerInfo,
    WorkflowRun,
)
from singularity_workflow.definitions import WorkflowDef

__all__ = [
    "AsyncClient",
    "default_async_client",
    "get_run_status_async",
    "list_workflow_runs_async",
    "cancel_workflow_run_async",
    "pause_workflow_run_async",
    "resume_workflow_run_async",
    "retry_failed_workflow_async",
    "enforce_deadlines_async",
    "send_with_notify_async",
    "notify_only_async",
    "read_channel_async",
    "ack_message_async",
    "read_events_async",
    "start_flow_async",
    "start_flows_async",
]


class AsyncClient(AsyncClientBase):
    """Typed async access to the engine's SQL functions; the async twin of ``Client``.

    Takes a connection string, a ``psycopg.AsyncConnection``, an open
    ``psycopg_pool.AsyncConnectionPool`` or nothing (``DATABASE_URL``). Every method is
    ``Client``'s, awaited; see ``Client`` and ``_aio`` for the rules.
    """

    async def register_flow(
        self, definition: Mapping[str, Any] | WorkflowDef | type | object
    ) -> str:
        """Register a flow (idempotent for the same shape); return its slug.

        Takes the JSON definition of ``workflow.register_flow`` as a dict, or a workflow (a
        ``WorkflowDef``, a ``Workflow`` subclass or a class with ``__workflow_steps__``), which is
        validated in Python first and whose handlers are then known to workers in this process.
        A shape the slug already has is a no-op; a new one becomes the slug's new current version
        (runs of earlier versions finish on theirs). :meth:`register_flow_version` also says
        which version and shape hash the definition is. The schedules a workflow class declares
        (``schedules = [Schedule(...)]``) are created with it, or updated to match the class
        (their enabled flag is kept).
        """
        return cast("str", await self._replay(Client.register_flow, definition))

    async def register_flow_version(
        self, definition: Mapping[str, Any] | WorkflowDef | type | object
    ) -> RegisteredVersion:
        """Register a flow like :meth:`register_flow`; return its version, shape hash, and if new.

        Workers put ``shape_hash`` in their handlers (``{"flow": {"<hash>": [steps]}}``) to claim
        only tasks of the versions their code serves.
        """
        return cast(
            "RegisteredVersion", await self._replay(Client.register_flow_version, definition)
        )

    async def flow_shape_hash(self, definition: Mapping[str, Any]) -> str:
        """Return the shape hash of a flow definition (``workflow.flow_shape_hash``)."""
        return cast("str", await self._replay(Client.flow_shape_hash, definition))

    async def get_flow(self, slug: str, version: int | None = None) -> dict[str, Any]:
        """Return a flow version's definition as JSON (the form register_flow takes).

        ``version`` None: the current version. FlowNotFound; VersionNotFound (WF020).
        """
        return cast("dict[str, Any]", await self._replay(Client.get_flow, slug, version))

    async def list_flow_versions(self, slug: str) -> list[FlowVersion]:
        """Return a flow's versions, newest first, with live and total run counts."""
        return cast("list[FlowVersion]", await self._replay(Client.list_flow_versions, slug))

    async def retire_flow_version(self, slug: str, version: int) -> datetime:
        """Retire a version: it starts no new runs, its runs in flight finish; return when.

        VersionInUse (WF022) for the current version; VersionNotFound.
        """
        return cast("datetime", await self._replay(Client.retire_flow_version, slug, version))

    async def delete_flow_version(self, slug: str, version: int) -> None:
        """Delete a version no run uses; VersionInUse (WF022) if runs use it or it is current."""
        await self._replay(Client.delete_flow_version, slug, version)

    async def list_flows(self) -> list[dict[str, Any]]:
        """Return every flow: ``slug``, ``steps`` (count), ``timeout``, ``created_at``."""
        return cast("list[dict[str, Any]]", await self._replay(Client.list_flows))

    async def create_flow(self, name: str, timeout: int | None = None) -> str:
        """Create an empty flow (``workflow.create_flow``); return its slug."""
        return cast("str", await self._replay(Client.create_flow, name, timeout))

    async def add_step(
        self,
        flow_slug: str,
        step_slug: str,
        depends_on: Sequence[str] = (),
        *,
        step_type: str | None = None,
        map_over: str | None = None,
        execution: str | None = None,
        queue: str | None = None,
        max_attempts: int | None = None,
        base_delay: int | None = None,
        timeout: int | None = None,
        start_delay: int | None = None,
        resources: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Append a step to a flow without runs (``workflow.add_step``); return it normalised.

        Options left None take the server's defaults.
        """
        return cast(
            "dict[str, Any]",
            await self._replay(
                Client.add_step,
                flow_slug,
                step_slug,
                depends_on,
                step_type=step_type,
                map_over=map_over,
                execution=execution,
                queue=queue,
                max_attempts=max_attempts,
                base_delay=base_delay,
                timeout=timeout,
                start_delay=start_delay,
                resources=resources,
            ),
        )

    async def store_task_graph(self, goal: str, tasks: Any, hierarchy: Any = None) -> UUID:
        """Validate and store a decomposed goal's task graph; return its id."""
        return cast("UUID", await self._replay(Client.store_task_graph, goal, tasks, hierarchy))

    async def get_task_graph(self, graph_id: UUID) -> dict[str, Any]:
        """Return a stored task graph (``workflow.get_task_graph``); TaskGraphNotFound."""
        return cast("dict[str, Any]", await self._replay(Client.get_task_graph, graph_id))

    async def approve_task_graph(self, graph_id: UUID) -> None:
        """Approve a stored task graph for execution (idempotent); TaskGraphNotFound."""
        await self._replay(Client.approve_task_graph, graph_id)

    async def record_task_graph_run(
        self, graph_id: UUID, flow_slug: str, run_id: UUID | None = None
    ) -> None:
        """Record the flow (and run) a graph executes as; InvalidState if it is not approved."""
        await self._replay(Client.record_task_graph_run, graph_id, flow_slug, run_id)

    async def start_flow(
        self,
        flow_slug: str | WorkflowDef | type | object,
        input: Any,
        *,
        run_id: UUID | None = None,
        timeout_seconds: int | None = None,
        concurrency_key: str | None = None,
        priority: int | None = None,
        owner: str | None = None,
        version: int | None = None,
        idempotency_key: str | None = None,
        dedupe_window: timedelta | float | None = None,
        debounce_key: str | None = None,
        debounce_interval: timedelta | float | None = None,
        debounce_mode: DebounceMode = "debounce",
        start_at: datetime | None = None,
    ) -> UUID:
        """Start a run of ``flow_slug`` with ``input``; return its run id, without waiting.

        ``flow_slug`` is a registered flow's slug (used as is) or a workflow (a ``Workflow``
        subclass, ``WorkflowDef`` or ``__workflow_steps__`` class), validated and registered
        first as :meth:`register_flow` does. Its steps run on workers serving their queues.

        ``input`` must be a JSON object (an array if the flow's root step maps over it). With
        ``run_id`` the call is idempotent: repeating it returns the same run.
        ``timeout_seconds`` sets the run's deadline (default: the flow's timeout, if any); past
        it ``enforce_deadlines`` cancels the run with the reason ``deadline exceeded``.
        ``concurrency_key`` is the run's key for the flow's key limit (default: the input's
        value at the limit's key path; see :meth:`set_concurrency_limit`). ``priority``
        (-1000..1000, default 0) orders its tasks on ordered queues (:meth:`set_queue_order`).
        ``owner``: the registered worker id of the process executing the run's local steps
        (``execute`` passes its own); a flow with local steps needs one (LocalStepsNeedOwner).
        ``version`` runs that flow version (default: the current one); the run stays on it.
        VersionNotFound (WF020), VersionRetired (WF021).
        ``idempotency_key``: a repeat within ``dedupe_window`` (default 24 hours; a timedelta
        or seconds) returns the first run, or raises KeyConflict if its input differs.
        ``debounce_key`` with ``debounce_interval``: ``debounce_mode="debounce"`` folds starts
        within the interval into one run that starts once the interval has been quiet, with
        the last input; ``"throttle"`` runs the first and returns it for the rest.
        ``start_at``: the run waits, state ``scheduled``, until then (cancellable meanwhile); a
        time in the past starts it now.
        """
        return cast(
            "UUID",
            await self._replay(
                Client.start_flow,
                flow_slug,
                input,
                run_id=run_id,
                timeout_seconds=timeout_seconds,
                concurrency_key=concurrency_key,
                priority=priority,
                owner=owner,
                version=version,
                idempotency_key=idempotency_key,
                dedupe_window=dedupe_window,
                debounce_key=debounce_key,
                debounce_interval=debounce_interval,
                debounce_mode=debounce_mode,
                start_at=start_at,
            ),
        )

    async def start_flows(
        self,
        flow_slug: str | WorkflowDef | type | object,
        inputs: Sequence[Any],
        *,
        run_ids: Sequence[UUID | None] | None = None,
        timeout_seconds: int | None = None,
        concurrency_key: str | None = None,
        priority: int | None = None,
        version: int | None = None,
        idempotency_keys: Sequence[str | None] | None = None,
        dedupe_window: timedelta | float | None = None,
        start_at: datetime | None = None,
    ) -> list[UUID]:
        """Start one run of ``flow_slug`` per input, in one call; return their ids in order.

        The batch form of :meth:`start_flow` (``workflow.start_flows``): one transaction and a
        few set-based statements for the whole batch, several times faster per run than separate
        calls. ``run_ids`` (same length, entries may be None) makes each run idempotent as in
        ``start_flow``. All or nothing: an invalid input fails the whole batch. ``flow_slug``
        is a slug or a workflow, as in :meth:`start_flow`.
        ``concurrency_key`` and ``priority``: as in ``start_flow``, for every run of the batch.
        ``start_flow``. All or nothing: an invalid input fails the whole batch. ``version`` as
        in ``start_flow``.
        ``start_flow``. All or nothing: an invalid input fails the whole batch.
        ``idempotency_keys`` (one per input, entries may be None), ``dedupe_window`` and
        ``start_at`` are those of :meth:`start_flow`.
        """
        return cast(
            "list[UUID]",
            await self._replay(
                Client.start_flows,
                flow_slug,
                inputs,
                run_ids=run_ids,
                timeout_seconds=timeout_seconds,
                concurrency_key=concurrency_key,
                priority=priority,
                version=version,
                idempotency_keys=idempotency_keys,
                dedupe_window=dedupe_window,
                start_at=start_at,
            ),
        )

    async def set_concurrency_limit(
        self, scope: str, name: str, max_running: int, *, key_path: str | None = None
    ) -> None:
        """Allow at most ``max_running`` started, unfinished tasks at once in one scope.

        ``scope``/``name``: ``"queue"``/queue name, ``"flow"``/flow slug, ``"step"``/
        ``"<flow_slug>.<step_slug>"``, or ``"key"``/flow slug with ``key_path`` (a dotted path
        into the run input, e.g. ``"tenant_id"``): the limit then holds per distinct key. Exact
        across all workers, seen by the next claim; lowering it cancels nothing. Repeating the
        call changes the limit. Raises InvalidLimit, InvalidKeyPath, FlowNotFound, StepNotFound.
        """
        await self._replay(
            Client.set_concurrency_limit, scope, name, max_running, key_path=key_path
        )

    async def set_rate_limit(
        self,
        scope: str,
        name: str,
        max_starts: int,
        per_seconds: float,
        *,
        key_path: str | None = None,
    ) -> None:
        """Allow at most ``max_starts`` task starts in any window of ``per_seconds`` seconds.

        Scopes and ``key_path`` as in :meth:`set_concurrency_limit`; global across workers (a
        sliding window, so never more than ``max_starts`` in any such window). A task that must
        wait becomes visible when a place frees, so no worker polls it meanwhile. Raises
        InvalidLimit (``max_starts`` outside 1..10000, ``per_seconds`` not positive) and the
        errors of :meth:`set_concurrency_limit`.
        """
        await self._replay(
            Client.set_rate_limit, scope, name, max_starts, per_seconds, key_path=key_path
        )

    async def remove_concurrency_limit(self, scope: str, name: str) -> bool:
        """Lift a concurrency limit; return whether there was one. Seen by the next claim."""
        return cast("bool", await self._replay(Client.remove_concurrency_limit, scope, name))

    async def remove_rate_limit(self, scope: str, name: str) -> bool:
        """Lift a rate limit; return whether there was one. Seen by the next claim."""
        return cast("bool", await self._replay(Client.remove_rate_limit, scope, name))

    async def set_queue_order(
        self, queue: str, *, aging_seconds: float = 60, spacing_seconds: float = 1
    ) -> None:
        """Claim ``queue``'s tasks by priority with aging, and fairly across keys.

        A task of priority p goes before lower-priority tasks sent up to
        ``p * aging_seconds`` after it; a key's burst of n tasks is spread over
        ``n * spacing_seconds`` of the queue's virtual time so other keys interleave (see
        ``workflow.set_queue_order``). Creates an index on the queue: turn it on before the
        queue is busy.
        """
        await self._replay(
            Client.set_queue_order,
            queue,
            aging_seconds=aging_seconds,
            spacing_seconds=spacing_seconds,
        )

    async def remove_queue_order(self, queue: str) -> bool:
        """Claim ``queue`` oldest first again; return whether it was ordered."""
        return cast("bool", await self._replay(Client.remove_queue_order, queue))

    async def set_step_priority(self, flow_slug: str, step_slug: str, priority: int) -> None:
        """Give a step's tasks a priority (added to their run's), for tasks sent from now on."""
        await self._replay(Client.set_step_priority, flow_slug, step_slug, priority)

    async def list_limits(self) -> list[LimitUse]:
        """Return every limit with its use: one row per limit and key (key None when unused)."""
        return cast("list[LimitUse]", await self._replay(Client.list_limits))

    async def create_schedule(
        self,
        name: str,
        flow_slug: str,
        cron: str,
        input: Mapping[str, Any] | list[Any] | None = None,
        *,
        timezone: str = "UTC",
        missed: MissedPolicy = "skip",
        max_catch_up: int = 10,
        enabled: bool = True,
    ) -> datetime:
        """Start runs of ``flow_slug`` on a cron schedule; return its first fire time.

        Idempotent for the same definition; KeyConflict for a taken name with another one.
        InvalidCron, UnknownTimeZone, FlowNotFound on bad input (nothing is stored). Ticks are
        fired by the engine's own calls (any worker's claims), so nothing else is needed.
        """
        return cast(
            "datetime",
            await self._replay(
                Client.create_schedule,
                name,
                flow_slug,
                cron,
                input,
                timezone=timezone,
                missed=missed,
                max_catch_up=max_catch_up,
                enabled=enabled,
            ),
        )

    async def update_schedule(
        self,
        name: str,
        *,
        flow_slug: str | None = None,
        cron: str | None = None,
        input: Mapping[str, Any] | list[Any] | None = None,
        timezone: str | None = None,
        missed: MissedPolicy | None = None,
        max_catch_up: int | None = None,
        enabled: bool | None = None,
    ) -> datetime | None:
        """Change a schedule (None keeps a value); return its next fire time (None if disabled)."""
        return cast(
            "datetime | None",
            await self._replay(
                Client.update_schedule,
                name,
                flow_slug=flow_slug,
                cron=cron,
                input=input,
                timezone=timezone,
                missed=missed,
                max_catch_up=max_catch_up,
                enabled=enabled,
            ),
        )

    async def enable_schedule(self, name: str) -> datetime | None:
        """Enable a schedule; its next tick is the first after now. Return it."""
        return cast("datetime | None", await self._replay(Client.enable_schedule, name))

    async def disable_schedule(self, name: str) -> None:
        """Disable a schedule: it fires nothing until enabled again."""
        await self._replay(Client.disable_schedule, name)

    async def delete_schedule(self, name: str) -> bool:
        """Delete a schedule (its runs stay); return whether there was one."""
        return cast("bool", await self._replay(Client.delete_schedule, name))

    async def list_schedules(self) -> list[ScheduleInfo]:
        """Return every schedule with its next tick and its last run."""
        return cast("list[ScheduleInfo]", await self._replay(Client.list_schedules))

    async def next_fire_times(self, name: str, n: int = 5) -> list[datetime]:
        """Return the next ``n`` ticks of a schedule after now; ScheduleNotFound."""
        return cast("list[datetime]", await self._replay(Client.next_fire_times, name, n))

    async def trigger_schedule(self, name: str) -> UUID:
        """Start a run of a schedule now, outside its ticks; return the run id."""
        return cast("UUID", await self._replay(Client.trigger_schedule, name))

    async def fire_due_schedules(self) -> int:
        """Fire every due tick now; return the number of runs started."""
        return cast("int", await self._replay(Client.fire_due_schedules))

    async def get_run_status(self, run_id: UUID | str) -> RunStatus:
        """Return a run's progress, per-step states, timings, input, output and error.

        The one status path (``workflow.get_run_status``). RunNotFound (WF011).
        """
        return cast("RunStatus", await self._replay(Client.get_run_status, run_id))

    async def get_step_outputs(self, run_id: UUID | str) -> dict[str, Any]:
        """Return every completed step's output by step slug (a map step's: the array).

        ``get_run_status`` carries only the run's output (its leaf steps'); this reads the inner
        steps too (``workflow.get_step_outputs``). RunNotFound (WF011).
        """
        return cast("dict[str, Any]", await self._replay(Client.get_step_outputs, run_id))

    async def list_workflow_runs(
        self,
        status: str | None = None,
        workflow_slug: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        order_by: OrderBy = ("desc", "inserted_at"),
    ) -> list[WorkflowRun]:
        """List runs, filtered by ``status`` and flow, ordered and paged (newest first by default).

        ``status``: ``started`` (or ``in_progress``: running or paused), ``completed``,
        ``failed`` (cancelled runs included), ``paused``, ``cancelled``, or None for all.
        ``order_by``: ``(direction, column)`` with direction ``asc``/``desc`` and column
        ``inserted_at`` (the start time), ``started_at``, ``completed_at``, ``failed_at``,
        ``flow_slug`` or ``status``; a column name alone means descending. ``limit``: 1-1000.
        Anything else raises InvalidOption (WF010): names are whitelisted by the database and
        never become SQL text.
        """
        return cast(
            "list[WorkflowRun]",
            await self._replay(
                Client.list_workflow_runs,
                status,
                workflow_slug,
                limit=limit,
                offset=offset,
                order_by=order_by,
            ),
        )

    async def cancel_workflow_run(
        self, run_id: UUID | str, reason: str = DEFAULT_CANCEL_REASON, *, force: bool = False
    ) -> None:
        """Cancel a run: it fails with ``reason`` and is flagged cancelled; its queued work goes.

        Tasks running on workers are refused at their next lease renewal or completion.
        InvalidState (WF013) if the run already ended, unless ``force`` (a completed run is then
        marked cancelled too); cancelling a cancelled run again changes nothing. RunNotFound.
        """
        await self._replay(Client.cancel_workflow_run, run_id, reason, force=force)

    async def pause_workflow_run(self, run_id: UUID | str) -> None:
        """Pause a run: nothing new of it is claimed; running tasks finish and count.

        Idempotent. InvalidState (WF013) if the run already ended; RunNotFound.
        """
        await self._replay(Client.pause_workflow_run, run_id)

    async def resume_workflow_run(self, run_id: UUID | str) -> None:
        """Resume a paused run: its held work becomes claimable and workers are woken.

        Idempotent (resuming a running run changes nothing). InvalidState (WF013) if the run
        already ended; RunNotFound.
        """
        await self._replay(Client.resume_workflow_run, run_id)

    async def resume_from_step(
        self, run_id: UUID | str, step: str, *, reason: str | None = None, owner: str | None = None
    ) -> UUID:
        """Restart a failed or completed run from ``step`` as a new run; return its id.

        Steps not downstream of ``step`` that completed keep their outputs; ``step`` and what
        follows it run again, except the elements of a map step (over an unchanged input) that
        completed before. The new run's ``retry_of`` is ``run_id``; ``resumed_from`` and
        ``resume_reason`` say from where and why. ``owner``: the process executing its local
        steps. InvalidState (WF013) for a run still running, ResumeStepNotFound (WF038).
        """
        return cast(
            "UUID",
            await self._replay(Client.resume_from_step, run_id, step, reason=reason, owner=owner),
        )

    async def retry_failed_workflow(
        self,
        run_id: UUID | str,
        *,
        skip_completed: bool = True,
        reset_all: bool = False,
        owner: str | None = None,
        on_current: bool = False,
    ) -> UUID:
        """Start a new run of a failed run's flow with the same input; return the new run id.

        The new run's ``retry_of`` is ``run_id``. With ``skip_completed`` (and not
        ``reset_all``) the steps that completed in the failed run are carried over with their
        outputs: only the failed step, its descendants and unfinished steps run again.
        InvalidState (WF013) if the run has not failed; RunNotFound. The retry runs on the failed
        run's own version; ``on_current=True`` runs it on the current version, carrying over only
        steps whose definition is unchanged (each is a ``step_reused`` event of the new run). A
        flow with local steps needs the ``owner`` that will execute the new run
        (LocalStepsNeedOwner, WF019): use ``execute_retry(run_id, workflow)``, which executes it
        in this process.
        """
        return cast(
            "UUID",
            await self._replay(
                Client.retry_failed_workflow,
                run_id,
                skip_completed=skip_completed,
                reset_all=reset_all,
                owner=owner,
                on_current=on_current,
            ),
        )

    async def enforce_deadlines(self, *, max_runs: int = 100) -> int:
        """Cancel up to ``max_runs`` runs past their deadline (reason ``deadline exceeded``).

        Returns how many were cancelled. Safe to call from many processes at once; workers
        call it on their polling cycle.
        """
        return cast("int", await self._replay(Client.enforce_deadlines, max_runs=max_runs))

    async def maintain(self) -> dict[str, Any]:
        """Run the engine's housekeeping once: cancel overdue runs, refresh stale statistics.

        Workers call it on every polling tick (see ``workflow.maintain``); returns
        ``{"cancelled_runs": n, "analyzed": [tables]}``.
        """
        return cast("dict[str, Any]", await self._replay(Client.maintain))

    async def claim_tasks(
        self,
        queue: str,
        qty: int = 10,
        *,
        worker_id: str | None = None,
        resources: Sequence[str] | None = None,
        for_run_id: UUID | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> list[ClaimedTask]:
        """Claim up to ``qty`` tasks from ``queue``; each carries its attempt token and lease.

        ``resources`` None claims regardless of the steps' resource requirements; a list claims
        only steps whose requirements it covers. Local steps: ``queue="local"`` and
        ``for_run_id`` (the run this process executes).
        """
        return cast(
            "list[ClaimedTask]",
            await self._replay(
                Client.claim_tasks,
                queue,
                qty,
                worker_id=worker_id,
                resources=resources,
                for_run_id=for_run_id,
                conn=conn,
            ),
        )

    async def complete_tasks(
        self,
        items: Sequence[tuple[int, int, Any]],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> dict[int, bool]:
        """Report ``(task_id, attempt, output)`` results; return task_id -> accepted.

        False means the report was stale (lease lost, duplicate, run already ended) and was
        ignored. Outputs that cannot be stored as JSON raise TypeError before any SQL is sent.
        An output given as a ``Jsonb`` (e.g. made by ``to_jsonb``) is sent unchanged.
        """
        return cast("dict[int, bool]", await self._replay(Client.complete_tasks, items, conn=conn))

    async def fail_tasks(
        self,
        items: Sequence[tuple[int, int, str] | tuple[int, int, str, bool]],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> dict[int, str]:
        """Report ``(task_id, attempt, error[, retryable])`` failures; return task_id -> outcome.

        Outcomes: ``"retry"`` (queued again after a backoff), ``"failed"`` (last attempt, or
        ``retryable`` False: the step and run failed), ``"stale"`` (the token did not match;
        nothing changed).
        """
        return cast("dict[int, str]", await self._replay(Client.fail_tasks, items, conn=conn))

    async def extend_leases(
        self,
        items: Sequence[tuple[int, int]],
        seconds: int,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> dict[int, bool]:
        """Push the leases of ``(task_id, attempt)`` to now + ``seconds``; task_id -> extended.

        False means: stop working on that task, its result would be ignored.
        """
        return cast(
            "dict[int, bool]", await self._replay(Client.extend_leases, items, seconds, conn=conn)
        )

    async def renew_leases(
        self,
        items: Sequence[tuple[int, int]],
        seconds: int,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> dict[int, LeaseRenewal]:
        """``extend_leases``, telling also whether each task's run is paused (``renew_leases``).

        What the worker's lease thread and ``StepContext.heartbeat`` call: a paused run's
        leases are still extended, and its handlers' contexts read ``cancelled``.
        """
        return cast(
            "dict[int, LeaseRenewal]",
            await self._replay(Client.renew_leases, items, seconds, conn=conn),
        )

    async def metrics(
        self, window: timedelta | float = 300, *, horizon: timedelta | float = 86400
    ) -> list[QueueMetrics]:
        """Return ``workflow.metrics``: per queue and flow, the tasks now and over ``window``.

        ``window``: seconds or a timedelta (default 5 minutes); ``horizon`` bounds how long
        before the window a task may have been created and still be counted (default 1 day).
        """
        return cast(
            "list[QueueMetrics]", await self._replay(Client.metrics, window, horizon=horizon)
        )

    async def metrics_series(
        self,
        window: timedelta | float = 3600,
        buckets: int = 60,
        *,
        horizon: timedelta | float = 86400,
    ) -> list[dict[str, Any]]:
        """Return ``workflow.metrics_series``: per time bucket and queue, the window's tasks.

        Keys: ``bucket_start``, ``queue``, ``claimed``, ``completed``, ``failed``, ``depth``,
        ``claim_latency_p50_seconds``, ``claim_latency_p95_seconds`` (None: nothing claimed).
        """
        return cast(
            "list[dict[str, Any]]",
            await self._replay(Client.metrics_series, window, buckets, horizon=horizon),
        )

    async def run_series(
        self,
        window: timedelta | float = 3600,
        buckets: int = 60,
        *,
        horizon: timedelta | float = 86400,
    ) -> list[dict[str, Any]]:
        """Return ``workflow.run_series``: per time bucket, runs started, completed, failed.

        Keys: ``bucket_start``, ``started``, ``completed``, ``failed``, ``cancelled``.
        """
        return cast(
            "list[dict[str, Any]]",
            await self._replay(Client.run_series, window, buckets, horizon=horizon),
        )

    async def list_workers(self, *, include_dead: bool = False) -> list[WorkerInfo]:
        """Return the live registered workers by id (``include_dead``: every registered one).

        A worker is live while it has not stopped and its last heartbeat is younger than its
        heartbeat timeout (``workflow.list_workers``).
        """
        return cast(
            "list[WorkerInfo]", await self._replay(Client.list_workers, include_dead=include_dead)
        )

    async def send_event(
        self,
        name: str,
        key: UUID | str,
        payload: Any = None,
        *,
        keep: timedelta | float | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> dict[str, Any]:
        """Send event ``name`` for ``key``: the wait step waiting on it completes with ``payload``.

        ``key`` is the run id (a wait step's default ``event_key``) or the input value its
        ``event_key`` path names. Returns ``{"status": "delivered", "run_id", "step"}``, or
        ``{"status": "kept", "event_id", "expires_at"}`` when no step waits yet: a wait step
        that starts within ``keep`` (default one day) takes it. ``conn``: send inside that
        connection's transaction (a handler's own). InvalidEvent (WF031), UnknownEvent (WF032:
        no flow waits for ``name``), EventPayloadTooLarge (WF033).
        """
        return cast(
            "dict[str, Any]",
            await self._replay(Client.send_event, name, key, payload, keep=keep, conn=conn),
        )

    async def approve(
        self, run_id: UUID | str, step: str, by: str | None = None, comment: str | None = None
    ) -> dict[str, Any]:
        """Approve wait step ``step`` of a run; its output is ``{"approved": True, "by", ...}``.

        Kept for the step when it has not started yet. RunNotFound (WF011), NotAWaitStep
        (WF034), StepNotWaiting (WF035: already decided, or the run ended).
        """
        return cast("dict[str, Any]", await self._replay(Client.approve, run_id, step, by, comment))

    async def reject(
        self, run_id: UUID | str, step: str, by: str | None = None, comment: str | None = None
    ) -> dict[str, Any]:
        """Reject wait step ``step`` of a run; its output is ``{"approved": False, "by", ...}``.

        The steps after it read the decision. Errors as ``approve``.
        """
        return cast("dict[str, Any]", await self._replay(Client.reject, run_id, step, by, comment))

    async def send_with_notify(
        self, channel: str, message: Any, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> int:
        """Persist ``message`` (any JSON value) on ``channel`` and notify listeners; return its id.

        The message and its NOTIFY (payload: the id) commit together. Ids increase per channel.
        InvalidName (WF001) for a bad or reserved channel name; TypeError (before any SQL) for a
        value JSON cannot hold.
        """
        return cast("int", await self._replay(Client.send_with_notify, channel, message, conn=conn))

    async def notify_only(self, channel: str, payload: str = "") -> None:
        """NOTIFY ``channel`` with ``payload`` without storing anything (missed if not listening).

        PayloadTooLarge (WF014) for a payload of 8,000 bytes or more; InvalidName (WF001).
        """
        await self._replay(Client.notify_only, channel, payload)

    async def read_channel(
        self,
        channel: str,
        after_id: int = 0,
        limit: int = 100,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> list[ChannelMessage]:
        """Return up to ``limit`` (1-1000) messages of ``channel`` with ids above ``after_id``.

        In id order, acknowledged ones included (flagged); empty for a channel never used.
        """
        return cast(
            "list[ChannelMessage]",
            await self._replay(Client.read_channel, channel, after_id, limit, conn=conn),
        )

    async def ack_message(self, channel: str, message_id: int) -> bool:
        """Acknowledge (archive) a message; False if it was not live (unknown or already acked)."""
        return cast("bool", await self._replay(Client.ack_message, channel, message_id))

    async def read_events(
        self,
        after_id: int = 0,
        run_id: UUID | str | None = None,
        limit: int = 100,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> list[WorkflowEvent]:
        """Return up to ``limit`` (1-10000) engine events with ids above ``after_id``, in order.

        ``run_id`` restricts them to one run. See ``WorkflowEvent`` for the event names.
        """
        return cast(
            "list[WorkflowEvent]",
            await self._replay(Client.read_events, after_id, run_id, limit, conn=conn),
        )

    async def last_message_id(
        self, channel: str, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> int:
        """Return the highest committed message id of ``channel`` (0 if none, or never used).

        A listener starts from here when told not to replay: later ids are new to it
        (``workflow.channel_last_id``: the channel's queue and archive).
        """
        return cast("int", await self._replay(Client.last_message_id, channel, conn=conn))

    async def last_event_id(self, *, conn: psycopg.AsyncConnection[Any] | None = None) -> int:
        """Return the highest committed event id (0 if none): where a live-only listener starts."""
        return cast("int", await self._replay(Client.last_event_id, conn=conn))


async def get_run_status_async(
    run_id: UUID | str, *, client: AsyncClient | None = None
) -> RunStatus:
    """Return a run's :class:`RunStatus`; RunNotFound (WF011) for an unknown run id."""
    return await _client(client).get_run_status(run_id)


async def list_workflow_runs_async(
    status: str | None = None,
    workflow_slug: str | None = None,
    limit: int = 100,
    offset: int = 0,
    order_by: OrderBy = ("desc", "inserted_at"),
    *,
    client: AsyncClient | None = None,
) -> list[WorkflowRun]:
    """List runs, newest first by default; see :meth:`Client.list_workflow_runs`."""
    return await _client(client).list_workflow_runs(
        status, workflow_slug, limit=limit, offset=offset, order_by=order_by
    )


async def cancel_workflow_run_async(
    run_id: UUID | str,
    reason: str = DEFAULT_CANCEL_REASON,
    force: bool = False,
    *,
    client: AsyncClient | None = None,
) -> None:
    """Cancel a run; see :meth:`Client.cancel_workflow_run`."""
    await _client(client).cancel_workflow_run(run_id, reason, force=force)


async def pause_workflow_run_async(
    run_id: UUID | str, *, client: AsyncClient | None = None
) -> None:
    """Pause a running run (idempotent); see :meth:`Client.pause_workflow_run`."""
    await _client(client).pause_workflow_run(run_id)


async def resume_workflow_run_async(
    run_id: UUID | str, *, client: AsyncClient | None = None
) -> None:
    """Resume a paused run (idempotent); see :meth:`Client.resume_workflow_run`."""
    await _client(client).resume_workflow_run(run_id)


async def retry_failed_workflow_async(
    run_id: UUID | str,
    skip_completed: bool = True,
    reset_all: bool = False,
    *,
    client: AsyncClient | None = None,
) -> UUID:
    """Retry a failed run as a new run; return its id. See :meth:`Client.retry_failed_workflow`.

    A flow with local steps is refused (LocalStepsNeedOwner, WF019): nobody would run them.
    ``execute_retry(run_id, workflow)`` retries it and executes the new run in this process.
    """
    return await _client(client).retry_failed_workflow(
        run_id, skip_completed=skip_completed, reset_all=reset_all
    )


async def enforce_deadlines_async(max_runs: int = 100, *, client: AsyncClient | None = None) -> int:
    """Cancel runs past their deadline; return how many. See :meth:`Client.enforce_deadlines`."""
    return await _client(client).enforce_deadlines(max_runs=max_runs)


async def send_with_notify_async(
    channel: str, message: Any, *, client: AsyncClient | None = None
) -> int:
    """Persist ``message`` on ``channel`` and notify its listeners; return the message id."""
    return await _client(client).send_with_notify(channel, message)


async def notify_only_async(
    channel: str, payload: str = "", *, client: AsyncClient | None = None
) -> None:
    """NOTIFY ``channel`` with ``payload`` (under 8,000 bytes), persisting nothing."""
    await _client(client).notify_only(channel, payload)


async def read_channel_async(
    channel: str, after_id: int = 0, limit: int = 100, *, client: AsyncClient | None = None
) -> list[ChannelMessage]:
    """Return a channel's messages with ids above ``after_id`` (history, in id order)."""
    return await _client(client).read_channel(channel, after_id, limit)


async def ack_message_async(
    channel: str, message_id: int, *, client: AsyncClient | None = None
) -> bool:
    """Acknowledge (archive) a channel message; False if it was not live."""
    return await _client(client).ack_message(channel, message_id)


async def read_events_async(
    after_id: int = 0,
    run_id: UUID | str | None = None,
    limit: int = 100,
    *,
    client: AsyncClient | None = None,
) -> list[WorkflowEvent]:
    """Return the engine's events with ids above ``after_id`` (of one run, with ``run_id``)."""
    return await _client(client).read_events(after_id, run_id, limit)


async def start_flow_async(
    workflow: str | WorkflowDef | type | object,
    input: Any,
    *,
    run_id: UUID | None = None,
    timeout_seconds: int | None = None,
    concurrency_key: str | None = None,
    priority: int | None = None,
    version: int | None = None,
    idempotency_key: str | None = None,
    dedupe_window: timedelta | float | None = None,
    debounce_key: str | None = None,
    debounce_interval: timedelta | float | None = None,
    debounce_mode: DebounceMode = "debounce",
    start_at: datetime | None = None,
    client: AsyncClient | None = None,
) -> UUID:
    """Start a run of ``workflow`` (a slug, or a workflow registered first); return its id.

    Returns at once: workers serving the steps' queues run it. See :meth:`Client.start_flow`.
    """
    return await _client(client).start_flow(
        workflow,
        input,
        run_id=run_id,
        timeout_seconds=timeout_seconds,
        concurrency_key=concurrency_key,
        priority=priority,
        version=version,
        idempotency_key=idempotency_key,
        dedupe_window=dedupe_window,
        debounce_key=debounce_key,
        debounce_interval=debounce_interval,
        debounce_mode=debounce_mode,
        start_at=start_at,
    )


async def start_flows_async(
    workflow: str | WorkflowDef | type | object,
    inputs: Sequence[Any],
    *,
    run_ids: Sequence[UUID | None] | None = None,
    timeout_seconds: int | None = None,
    concurrency_key: str | None = None,
    priority: int | None = None,
    version: int | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    dedupe_window: timedelta | float | None = None,
    start_at: datetime | None = None,
    client: AsyncClient | None = None,
) -> list[UUID]:
    """Start one run per input in one call; return their ids. See :meth:`Client.start_flows`."""
    return await _client(client).start_flows(
        workflow,
        inputs,
        run_ids=run_ids,
        timeout_seconds=timeout_seconds,
        concurrency_key=concurrency_key,
        priority=priority,
        version=version,
        idempotency_keys=idempotency_keys,
        dedupe_window=dedupe_window,
        start_at=start_at,
    )


def default_async_client() -> AsyncClient:
    """Return the running event loop's client over ``DATABASE_URL`` (one per loop)."""
    return default_for_loop(AsyncClient)


def _client(client: AsyncClient | None) -> AsyncClient:
    return client if client is not None else default_async_client()
