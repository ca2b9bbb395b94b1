"""The worker's hot path: claim, complete, fail and extend tasks, one statement each.

Named arguments keep the statements correct if a function gains a parameter; explicit array
casts keep psycopg from guessing int2/int4/int8 from the Python values. A claim's input and
item come back as text and are decoded task by task (``_load_task_json``), so one too-deep
input marks only its own task.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

from singularity_workflow._db import Operation, Rows, clean_text, to_jsonb
from singularity_workflow._types import ClaimedTask, LeaseRenewal, UndecodableJson

__all__ = ["claim_tasks", "complete_tasks", "extend_leases", "fail_tasks", "renew_leases"]

_CLAIM: Final = (
    "select task_id, attempt, run_id, flow_slug, step_slug, task_index, input::text, item::text,"
    " lease_expires_at from workflow.claim_tasks(queue_name => %s, qty => %s,"
    " worker_id => %s, resources => %s::text[], for_run_id => %s)"
)
_COMPLETE: Final = (
    "select task_id, accepted from workflow.complete_tasks("
    "task_ids => %s::bigint[], attempts => %s::integer[], outputs => %s::jsonb[])"
)
_FAIL: Final = (
    "select task_id, outcome from workflow.fail_tasks("
    "task_ids => %s::bigint[], attempts => %s::integer[], errors => %s::text[],"
    " retryable => %s::boolean[])"
)
_EXTEND: Final = (
    "select task_id, extended from workflow.extend_leases("
    "task_ids => %s::bigint[], attempts => %s::integer[], seconds => %s)"
)


def _load_task_json(text: str | None) -> Any:
    """Decode a claimed task's input or item; an UndecodableJson marker if it is too deep."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except RecursionError:
        return UndecodableJson(
            "its input is nested too deeply to decode in Python (over ~1,000 levels)"
        )


def _claimed(rows: Rows) -> list[ClaimedTask]:
    """Decode claim rows into ClaimedTask values."""
    return [
        ClaimedTask(t, a, r, f, s, i, _load_task_json(inp), _load_task_json(item), lease)
        for t, a, r, f, s, i, inp, item, lease in rows
    ]


def _by_task(rows: Rows) -> dict[Any, Any]:
    """Decode ``(task_id, value)`` rows into a dict."""
    return {task_id: value for task_id, value in rows}


def claim_tasks(
    queue: str,
    qty: int = 10,
    *,
    worker_id: str | None = None,
    resources: Sequence[str] | None = None,
    for_run_id: UUID | None = None,
) -> Operation[list[ClaimedTask]]:
    """Claim up to ``qty`` tasks from ``queue`` (``workflow.claim_tasks``)."""
    return Operation(
        _CLAIM,
        [queue, qty, worker_id, None if resources is None else list(resources), for_run_id],
        _claimed,
    )


def complete_tasks(items: Sequence[tuple[int, int, Any]]) -> Operation[dict[int, bool]]:
    """Report ``(task_id, attempt, output)`` results; decodes task_id -> accepted.

    Outputs are serialised here (TypeError before any SQL for a value JSON cannot hold); an
    output that already is a ``Jsonb`` (the worker serialises each once, in the handler's
    thread) is sent as it is.
    """
    ids = [i[0] for i in items]
    attempts = [i[1] for i in items]
    outputs = [to_jsonb(i[2], f"output of task {i[0]}") for i in items]
    return Operation(_COMPLETE, [ids, attempts, outputs], _by_task)


def fail_tasks(
    items: Sequence[tuple[int, int, str] | tuple[int, int, str, bool]],
) -> Operation[dict[int, str]]:
    """Report ``(task_id, attempt, error[, retryable])`` failures; decodes task_id -> outcome.

    ``retryable`` False (a deterministic failure) fails the task at once, whatever attempts
    are left; left out, it is True.
    """
    ids = [i[0] for i in items]
    attempts = [i[1] for i in items]
    errors = [clean_text(i[2]) for i in items]
    retryable = [bool(i[3]) if len(i) > 3 else True for i in items]
    return Operation(_FAIL, [ids, attempts, errors, retryable], _by_task)


def extend_leases(items: Sequence[tuple[int, int]], seconds: int) -> Operation[dict[int, bool]]:
    """Push the leases of ``(task_id, attempt)`` to now + ``seconds``; task_id -> extended."""
    ids = [i[0] for i in items]
    attempts = [i[1] for i in items]
    return Operation(_EXTEND, [ids, attempts, seconds], _by_task)


_RENEW: Final = (
    "select task_id, extended, run_paused from workflow.renew_leases("
    "task_ids => %s::bigint[], attempts => %s::integer[], seconds => %s)"
)


def _renewals(rows: Rows) -> dict[int, LeaseRenewal]:
    """Decode ``(task_id, extended, run_paused)`` rows into task_id -> LeaseRenewal."""
    return {task_id: LeaseRenewal(extended, run_paused) for task_id, extended, run_paused in rows}


def renew_leases(
    items: Sequence[tuple[int, int]], seconds: int
) -> Operation[dict[int, LeaseRenewal]]:
    """``extend_leases`` that also reads whether each task's run is paused (``renew_leases``)."""
    ids = [i[0] for i in items]
    attempts = [i[1] for i in items]
    return Operation(_RENEW, [ids, attempts, seconds], _renewals)
