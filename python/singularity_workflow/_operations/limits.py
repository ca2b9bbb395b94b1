"""Operations on concurrency and rate limits: declare, lift and list them.

A concurrency limit caps the tasks started and not finished at once in one scope (a queue, a
flow, a step or each key of a flow's runs); a rate limit caps the task starts in any window of
``per_seconds``. The claim enforces both (see ``workflow.claim_tasks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from singularity_workflow._db import Operation, Rows, first_value, no_result

__all__ = [
    "LimitUse",
    "list_limits",
    "remove_limit",
    "remove_queue_order",
    "set_concurrency_limit",
    "set_queue_order",
    "set_rate_limit",
    "set_step_priority",
]


@dataclass(frozen=True)
class LimitUse:
    """One row of ``workflow.list_limits``: a limit, one of its keys and the key's use.

    ``kind`` is ``"concurrency"`` or ``"rate"``; ``key`` is the key of a ``key`` limit (''
    for queue, flow and step limits), or None when the limit is not in use. ``in_use``: the
    started, unfinished tasks holding a slot (concurrency), or the starts inside the window
    (rate, ``max_count`` per ``per_seconds``).
    """

    kind: str
    scope: str
    name: str
    key_path: str | None
    key: str | None
    max_count: int
    per_seconds: Decimal | None
    in_use: int


def set_concurrency_limit(
    scope: str, name: str, max_running: int, *, key_path: str | None = None
) -> Operation[None]:
    """Declare or change a concurrency limit (``workflow.set_concurrency_limit``)."""
    return Operation(
        "select 1 from workflow.set_concurrency_limit(scope => %s, name => %s,"
        " max_running => %s, key_path => %s)",
        [scope, name, max_running, key_path],
        no_result,
    )


def set_rate_limit(
    scope: str, name: str, max_starts: int, per_seconds: float, *, key_path: str | None = None
) -> Operation[None]:
    """Declare or change a rate limit (``workflow.set_rate_limit``)."""
    return Operation(
        "select 1 from workflow.set_rate_limit(scope => %s, name => %s, max_starts => %s,"
        " per_seconds => %s::numeric, key_path => %s)",
        [scope, name, max_starts, per_seconds, key_path],
        no_result,
    )


def remove_limit(kind: str, scope: str, name: str) -> Operation[bool]:
    """Lift a limit (``workflow.remove_limit``); decodes whether one existed."""
    return Operation(
        "select workflow.remove_limit(kind => %s, scope => %s, name => %s)",
        [kind, scope, name],
        first_value,
    )


def _limit_uses(rows: Rows) -> list[LimitUse]:
    """Decode ``workflow.list_limits`` rows (column order = field order)."""
    return [LimitUse(*row) for row in rows]


def list_limits() -> Operation[list[LimitUse]]:
    """Read the limits and their use per key (``workflow.list_limits``)."""
    return Operation(
        "select kind, scope, name, key_path, key, max_count, per_seconds, in_use"
        " from workflow.list_limits()",
        [],
        _limit_uses,
    )


def set_queue_order(
    queue: str, *, aging_seconds: float = 60, spacing_seconds: float = 1
) -> Operation[None]:
    """Claim ``queue`` by priority with aging, fairly across keys (``workflow.set_queue_order``)."""
    return Operation(
        "select 1 from workflow.set_queue_order(queue_name => %s,"
        " aging_seconds => %s::numeric, spacing_seconds => %s::numeric)",
        [queue, aging_seconds, spacing_seconds],
        no_result,
    )


def remove_queue_order(queue: str) -> Operation[bool]:
    """Claim ``queue`` oldest first again (``workflow.remove_queue_order``)."""
    return Operation("select workflow.remove_queue_order(queue_name => %s)", [queue], first_value)


def set_step_priority(flow_slug: str, step_slug: str, priority: int) -> Operation[None]:
    """Set a step's priority (``workflow.set_step_priority``)."""
    return Operation(
        "select workflow.set_step_priority(flow_slug => %s, step_slug => %s, priority => %s)",
        [flow_slug, step_slug, priority],
        no_result,
    )
