"""Operations on concurrency limits: declare, lift and list them.

A limit caps the tasks started and not finished at once in one scope (a queue, a flow, a step
or each key of a flow's runs); the claim enforces it (see ``workflow.claim_tasks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from singularity_workflow._db import Operation, Rows, first_value, no_result

__all__ = [
    "LimitUse",
    "list_limits",
    "remove_concurrency_limit",
    "set_concurrency_limit",
]


@dataclass(frozen=True)
class LimitUse:
    """One row of ``workflow.list_limits``: a limit, one of its keys and the key's use.

    ``key`` is the key of a ``key`` limit ('' for queue, flow and step limits), or None when no
    task holds a slot of the limit; ``in_use`` counts the started, unfinished tasks holding one.
    """

    scope: str
    name: str
    key_path: str | None
    key: str | None
    max_running: int
    in_use: int


def set_concurrency_limit(
    scope: str, name: str, max_running: int, *, key_path: str | None = None
) -> Operation[None]:
    """Declare or change a limit (``workflow.set_concurrency_limit``)."""
    return Operation(
        "select 1 from workflow.set_concurrency_limit(scope => %s, name => %s,"
        " max_running => %s, key_path => %s)",
        [scope, name, max_running, key_path],
        no_result,
    )


def remove_concurrency_limit(scope: str, name: str) -> Operation[bool]:
    """Lift a limit (``workflow.remove_concurrency_limit``); decodes whether one existed."""
    return Operation(
        "select workflow.remove_concurrency_limit(scope => %s, name => %s)",
        [scope, name],
        first_value,
    )


def _limit_uses(rows: Rows) -> list[LimitUse]:
    """Decode ``workflow.list_limits`` rows (column order = field order)."""
    return [LimitUse(*row) for row in rows]


def list_limits() -> Operation[list[LimitUse]]:
    """Read the limits and their use per key (``workflow.list_limits``)."""
    return Operation(
        "select scope, name, key_path, key, max_running, in_use from workflow.list_limits()",
        [],
        _limit_uses,
    )
