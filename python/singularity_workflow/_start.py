"""Start runs without waiting (workers serve them) and wait for a run's end: ``wait_for_run``.

``execute`` starts a run and serves its local steps itself; these functions only start runs
(their steps are served by ``Worker`` processes on the steps' queues) and, separately, wait for
one to end. ``start_flow(workflow_or_slug, input)`` takes a registered flow's slug as is, or a
workflow class, which is validated and registered first.

``wait_for_run`` LISTENs on the run's channel ``workflow_run_<run_id>`` (every event of the
run is sent there; the end carries ``status`` completed, failed or cancelled) *before* it reads
the status once, so a run that ends between the two is seen either way. A status read once per
second covers a lost notification. A status read that loses its connection (the server
restarted, a failover to a replica promoted in its place) is retried until the timeout, as the
notifier reconnects: the wait is read-only, so repeating it is safe. The sync form uses
``_notify.Notifier``; the async form LISTENs on a dedicated ``psycopg.AsyncConnection``.

The async forms of ``start_flow``/``start_flows`` (``start_flow_async`` ...) are generated into
``_async_client`` from the functions here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg import sql

from singularity_workflow._async_client import AsyncClient, default_async_client
from singularity_workflow._client import Client, default_client
from singularity_workflow._errors import RunTimeout
from singularity_workflow._notify import Notifier
from singularity_workflow._operations.runs import DebounceMode
from singularity_workflow._types import RunStatus, run_uuid
from singularity_workflow.definitions import WorkflowDef

__all__ = ["start_flow", "start_flows", "wait_for_run", "wait_for_run_async"]

#: How often a waiter reads the status when no notification came (a lost one costs this much).
_POLL_SECONDS: Final = 1.0
#: Pause between status reads while the database cannot be reached (a restart, a failover).
_RETRY_SECONDS: Final = 0.2
#: The ``RunStatus.status`` of a run that has not ended (running or paused).
_LIVE: Final = "in_progress"
_ENDED: Final = frozenset({"completed", "failed", "cancelled"})


def _client(client: Client | None) -> Client:
    return client if client is not None else default_client()


def start_flow(
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
    client: Client | None = None,
) -> UUID:
    """Start a run of ``workflow`` (a slug, or a workflow registered first); return its id.

    Returns at once: workers serving the steps' queues run it. See :meth:`Client.start_flow`.
    """
    return _client(client).start_flow(
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


def start_flows(
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
    client: Client | None = None,
) -> list[UUID]:
    """Start one run per input in one call; return their ids. See :meth:`Client.start_flows`."""
    return _client(client).start_flows(
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


def _ended(payload: str) -> bool:
    """Tell whether a run-channel notification announces the run's end."""
    try:
        return json.loads(payload).get("status") in _ENDED
    except (ValueError, AttributeError):
        return False


def _timeout(run_id: UUID, status: RunStatus, timeout: float) -> RunTimeout:
    return RunTimeout(
        f"run {run_id} did not end within {timeout:g} s"
        f" ({status.completed_steps} of {status.total_steps} steps completed)",
        run_id=run_id,
        completed_steps=status.completed_steps,
        total_steps=status.total_steps,
        hint="The run goes on; wait again, or cancel it with cancel_workflow_run.",
    )


def wait_for_run(
    run_id: UUID | str, timeout: float = 300, *, client: Client | None = None
) -> RunStatus:
    """Wait until the run ends (completed, failed or cancelled); return its :class:`RunStatus`.

    Raises :class:`RunTimeout` after ``timeout`` seconds (the run is left as it is), and
    RunNotFound for an unknown run. A failed run is returned, not raised: read ``status``.
    """
    client = _client(client)
    run = run_uuid(run_id)
    deadline = time.monotonic() + timeout
    notifier = Notifier(client.connect_dedicated, [f"workflow_run_{run}"], name="wait_for_run")
    with notifier:
        while True:
            status = _status_reconnecting(client, run, deadline)
            if status.status != _LIVE:
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timeout(run, status, timeout)
            for note in notifier.receive(min(left, _POLL_SECONDS), stop_after=1):
                if _ended(note.payload):
                    break


def _status_reconnecting(client: Client, run: UUID, deadline: float) -> RunStatus:
    """Read the run's status; while the connection is lost, retry until ``deadline``.

    The Client drops a broken connection and opens a new one on the next call, so a retry is
    a reconnect: with a multi-host connection string (``target_session_attrs=read-write``) it
    finds a promoted replica.
    """
    while True:
        try:
            return client.get_run_status(run)
        except psycopg.OperationalError:
            if time.monotonic() + _RETRY_SECONDS > deadline:
                raise
            time.sleep(_RETRY_SECONDS)


async def wait_for_run_async(
    run_id: UUID | str, timeout: float = 300, *, client: AsyncClient | None = None
) -> RunStatus:
    """Await the run's end without blocking the loop; the async form of :func:`wait_for_run`."""
    client = client if client is not None else default_async_client()
    run = run_uuid(run_id)
    deadline = time.monotonic() + timeout
    conn = await client.connect_dedicated()
    try:
        await conn.execute(sql.SQL("listen {}").format(sql.Identifier(f"workflow_run_{run}")))
        while True:
            status = await client.get_run_status(run)
            if status.status != _LIVE:
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timeout(run, status, timeout)
            async for note in conn.notifies(timeout=min(left, _POLL_SECONDS), stop_after=1):
                if _ended(note.payload):
                    break
    finally:
        await conn.close()
