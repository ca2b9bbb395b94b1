"""Operations on the goal orchestrator's stored task graphs (store, read, approve, record)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from singularity_workflow._db import Operation, first_value, no_result, to_jsonb
from singularity_workflow._operations._args import need_text
from singularity_workflow._types import run_uuid

__all__ = ["approve_task_graph", "get_task_graph", "record_task_graph_run", "store_task_graph"]


def store_task_graph(goal: str, tasks: Any, hierarchy: Any = None) -> Operation[UUID]:
    """Validate and store a decomposed goal's task graph; decodes its id."""
    need_text(goal, "goal")
    return Operation(
        "select workflow.store_task_graph(goal => %s, tasks => %s, hierarchy => %s)",
        [
            goal,
            to_jsonb(tasks, "tasks"),
            None if hierarchy is None else to_jsonb(hierarchy, "hierarchy"),
        ],
        first_value,
    )


def get_task_graph(graph_id: UUID) -> Operation[dict[str, Any]]:
    """Read a stored task graph (``workflow.get_task_graph``)."""
    return Operation(
        "select workflow.get_task_graph(%s)", [run_uuid(graph_id, "graph_id")], first_value
    )


def approve_task_graph(graph_id: UUID) -> Operation[None]:
    """Approve a stored task graph for execution (idempotent)."""
    return Operation(
        "select workflow.approve_task_graph(%s)", [run_uuid(graph_id, "graph_id")], no_result
    )


def record_task_graph_run(
    graph_id: UUID, flow_slug: str, run_id: UUID | None = None
) -> Operation[None]:
    """Record the flow (and run) a graph executes as."""
    return Operation(
        "select workflow.record_task_graph_run(%s, %s, %s)",
        [
            run_uuid(graph_id, "graph_id"),
            flow_slug,
            None if run_id is None else run_uuid(run_id),
        ],
        no_result,
    )
