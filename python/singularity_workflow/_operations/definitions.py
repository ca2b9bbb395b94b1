"""Operations on flow definitions: register, read, list, and build step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from singularity_workflow._db import Operation, Rows, first_value, to_jsonb
from singularity_workflow._operations._args import need_int, need_text, need_type

__all__ = ["add_step", "create_flow", "get_flow", "list_flows", "register_flow"]

_ADD_STEP: Final = (
    "select workflow.add_step(flow_slug => %s, step_slug => %s, depends_on => %s::text[],"
    " step_type => %s, map_over => %s, execution => %s, queue_name => %s,"
    " max_attempts => %s, base_delay => %s, timeout => %s, start_delay => %s,"
    " resources => %s::text[])"
)
# A read of the definition tables (no workflow.* function lists flows yet); this is its one home.
_LIST_FLOWS: Final = (
    "select f.flow_slug, count(s.step_slug)::integer,"
    " f.timeout_seconds, f.created_at"
    " from workflow.flows f left join workflow.steps s on s.flow_slug = f.flow_slug"
    " group by f.flow_slug order by f.flow_slug"
)
_FLOW_KEYS: Final = ("slug", "steps", "timeout", "created_at")


def _text(rows: Rows) -> str:
    """Decode a one-value result as text (a slug)."""
    return str(rows[0][0])


def _flows(rows: Rows) -> list[dict[str, Any]]:
    """Decode flow rows into dicts: ``slug``, ``steps``, ``timeout``, ``created_at``."""
    return [dict(zip(_FLOW_KEYS, row, strict=True)) for row in rows]


def register_flow(definition: Mapping[str, Any]) -> Operation[str]:
    """Register a flow from its JSON definition (``workflow.register_flow``); decodes its slug."""
    need_type(definition, "definition", Mapping, "a dict (the flow's JSON definition)")
    return Operation(
        "select workflow.register_flow(%s)", [to_jsonb(dict(definition), "flow definition")], _text
    )


def get_flow(slug: str) -> Operation[dict[str, Any]]:
    """Read a flow's definition as JSON (``workflow.get_flow``)."""
    need_text(slug, "slug")
    return Operation("select workflow.get_flow(%s)", [slug], first_value)


def list_flows() -> Operation[list[dict[str, Any]]]:
    """List every flow with its step count, timeout and creation time, by slug."""
    return Operation(_LIST_FLOWS, [], _flows)


def create_flow(name: str, timeout: int | None = None) -> Operation[str]:
    """Create an empty flow (``workflow.create_flow``); decodes its slug."""
    need_text(name, "name")
    need_int(timeout, "timeout", optional=True)
    return Operation("select workflow.create_flow(%s, %s)", [name, timeout], _text)


def add_step(
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
) -> Operation[dict[str, Any]]:
    """Append a step to a flow (``workflow.add_step``); decodes the step as normalised."""
    need_text(flow_slug, "flow_slug")
    need_text(step_slug, "step_slug")
    # A str is a Sequence too: add_step("f", "b", "a") would depend on steps "a".
    need_type(depends_on, "depends_on", (list, tuple), "a list of step slugs")
    return Operation(
        _ADD_STEP,
        [
            flow_slug,
            step_slug,
            list(depends_on),
            step_type,
            map_over,
            execution,
            queue,
            max_attempts,
            base_delay,
            timeout,
            start_delay,
            None if resources is None else list(resources),
        ],
        first_value,
    )
