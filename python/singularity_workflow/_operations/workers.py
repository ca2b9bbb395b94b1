"""Operations on the registered workers that the CLI and the dashboard read.

Registering, heartbeating and deregistering are the worker's own calls; this module holds the
read: ``workflow.list_workers`` (live workers, or every registered one).
"""

from __future__ import annotations

from typing import Final

from singularity_workflow._db import Operation, Rows
from singularity_workflow._operations._args import need_bool
from singularity_workflow._types import WorkerInfo

__all__ = ["list_workers"]

# Named columns, in the order of WorkerInfo's fields.
_LIST_WORKERS: Final = (
    "select worker_id, host, pid, queues, resources, handlers, version, started_at,"
    " heartbeat_at, heartbeat_timeout_seconds, stopped_at, alive"
    " from workflow.list_workers(include_dead => %s)"
)


def _workers(rows: Rows) -> list[WorkerInfo]:
    """Decode ``workflow.list_workers`` rows (column order = field order)."""
    return [WorkerInfo.from_row(row) for row in rows]


def list_workers(*, include_dead: bool = False) -> Operation[list[WorkerInfo]]:
    """List the live registered workers (with ``include_dead``: stopped and silent ones too)."""
    need_bool(include_dead, "include_dead")
    return Operation(_LIST_WORKERS, [include_dead], _workers)
