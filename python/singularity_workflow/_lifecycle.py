"""Lifecycle control of runs: the module-level functions over the default client.

Each operation is one SQL function of the engine (``workflow.get_run_status`` ...), defined once
in ``_operations.runs`` and executed by :class:`~singularity_workflow.Client`; these functions use
the default client over ``DATABASE_URL`` unless given ``client=``. The typed results
(:class:`RunStatus`, :class:`StepStatus`, :class:`WorkflowRun`) live in ``_types``.

The state lives in the database, so these calls work from any process: a dashboard may pause a
run that a worker fleet is executing, and the workers learn it at their next claim (nothing of
a paused run is handed out) or lease renewal (a cancelled run's tasks are refused).

What the states mean (``RunStatus.state``): ``running``; ``paused`` (no new task is claimed,
tasks already running finish and count); ``completed``; ``failed``; ``cancelled`` (a failed run
stopped on request or by its deadline; ``error`` says why, e.g. ``deadline exceeded``).
``RunStatus.status`` is the Elixir library's coarser ``completed`` / ``failed`` / ``in_progress``.
"""

from __future__ import annotations

from uuid import UUID

from singularity_workflow._client import Client, default_client
from singularity_workflow._types import (
    DEFAULT_CANCEL_REASON,
    OrderBy,
    RunStatus,
    StepStatus,
    WorkflowRun,
)

__all__ = [
    "DEFAULT_CANCEL_REASON",
    "OrderBy",
    "RunStatus",
    "StepStatus",
    "WorkflowRun",
    "cancel_workflow_run",
    "enforce_deadlines",
    "get_run_status",
    "list_workflow_runs",
    "pause_workflow_run",
    "resume_workflow_run",
    "retry_failed_workflow",
]


def _client(client: Client | None) -> Client:
    """Return the given client, or the process-wide one over ``DATABASE_URL``."""
    return client if client is not None else default_client()


def get_run_status(run_id: UUID | str, *, client: Client | None = None) -> RunStatus:
    """Return a run's :class:`RunStatus`; RunNotFound (WF011) for an unknown run id."""
    return _client(client).get_run_status(run_id)


def list_workflow_runs(
    status: str | None = None,
    workflow_slug: str | None = None,
    limit: int = 100,
    offset: int = 0,
    order_by: OrderBy = ("desc", "inserted_at"),
    *,
    client: Client | None = None,
) -> list[WorkflowRun]:
    """List runs, newest first by default; see :meth:`Client.list_workflow_runs`."""
    return _client(client).list_workflow_runs(
        status, workflow_slug, limit=limit, offset=offset, order_by=order_by
    )


def cancel_workflow_run(
    run_id: UUID | str,
    reason: str = DEFAULT_CANCEL_REASON,
    force: bool = False,
    *,
    client: Client | None = None,
) -> None:
    """Cancel a run; see :meth:`Client.cancel_workflow_run`."""
    _client(client).cancel_workflow_run(run_id, reason, force=force)


def pause_workflow_run(run_id: UUID | str, *, client: Client | None = None) -> None:
    """Pause a running run (idempotent); see :meth:`Client.pause_workflow_run`."""
    _client(client).pause_workflow_run(run_id)


def resume_workflow_run(run_id: UUID | str, *, client: Client | None = None) -> None:
    """Resume a paused run (idempotent); see :meth:`Client.resume_workflow_run`."""
    _client(client).resume_workflow_run(run_id)


def retry_failed_workflow(
    run_id: UUID | str,
    skip_completed: bool = True,
    reset_all: bool = False,
    *,
    client: Client | None = None,
) -> UUID:
    """Retry a failed run as a new run; return its id. See :meth:`Client.retry_failed_workflow`.

    A flow with local steps is refused (LocalStepsNeedOwner, WF019): nobody would run them.
    ``execute_retry(run_id, workflow)`` retries it and executes the new run in this process.
    """
    return _client(client).retry_failed_workflow(
        run_id, skip_completed=skip_completed, reset_all=reset_all
    )


def enforce_deadlines(max_runs: int = 100, *, client: Client | None = None) -> int:
    """Cancel runs past their deadline; return how many. See :meth:`Client.enforce_deadlines`."""
    return _client(client).enforce_deadlines(max_runs=max_runs)
