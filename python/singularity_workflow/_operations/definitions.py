"""Operations on flow definitions: register, read, list, and build step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from singularity_workflow._db import Operation, Rows, first_value, to_jsonb
from singularity_workflow._operations._args import need_int, need_text, need_type
from singularity_workflow._types import FlowVersion, RegisteredVersion

__all__ = [
    "add_step",
    "create_flow",
    "delete_flow_version",
    "flow_shape_hash",
    "get_flow",
    "list_flow_versions",
    "list_flows",
    "register_flow",
    "register_flow_version",
    "retire_flow_version",
]

_ADD_STEP: Final = (
    "select workflow.add_step(flow_slug => %s, step_slug => %s, depends_on => %s::text[],"
    " step_type => %s, map_over => %s, execution => %s, queue_name => %s,"
    " max_attempts => %s, base_delay => %s, timeout => %s, start_delay => %s,"
    " resources => %s::text[])"
)
# A read of the definition tables (no workflow.* function lists flows yet); this is its one home.
# Steps and timeout are the current version's.
_LIST_FLOWS: Final = (
    "select f.flow_slug, count(s.step_slug)::integer,"
    " v.timeout_seconds, f.created_at, v.version"
    " from workflow.flows f join workflow.flow_versions v on v.version_id = f.current_version_id"
    " left join workflow.steps s on s.version_id = v.version_id"
    " group by f.flow_slug, v.version_id order by f.flow_slug"
)
_FLOW_KEYS: Final = ("slug", "steps", "timeout", "created_at", "version")
_LIST_VERSIONS: Final = (
    "select %s, version, shape_hash, is_current, created_at, retired_at, live_runs, total_runs"
    " from workflow.list_flow_versions(%s)"
)


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


def register_flow_version(definition: Mapping[str, Any]) -> Operation[RegisteredVersion]:
    """Register a flow and say which version its shape is (``workflow.register_flow_version``)."""
    return Operation(
        "select flow_slug, version, shape_hash, created from workflow.register_flow_version(%s)",
        [to_jsonb(dict(definition), "flow definition")],
        lambda rows: RegisteredVersion(*rows[0]),
    )


def flow_shape_hash(definition: Mapping[str, Any]) -> Operation[str]:
    """Compute a definition's shape hash (``workflow.flow_shape_hash``) without registering it."""
    return Operation(
        "select workflow.flow_shape_hash(%s)",
        [to_jsonb(dict(definition), "flow definition")],
        _text,
    )


def get_flow(slug: str, version: int | None = None) -> Operation[dict[str, Any]]:
    """Read a flow version's definition as JSON (``workflow.get_flow``; None: the current)."""
    need_text(slug, "slug")
    need_int(version, "version", optional=True)
    return Operation("select workflow.get_flow(%s, %s)", [slug, version], first_value)


def list_flow_versions(slug: str) -> Operation[list[FlowVersion]]:
    """List a flow's versions, newest first, with run counts (``workflow.list_flow_versions``)."""
    return Operation(_LIST_VERSIONS, [slug, slug], lambda rows: [FlowVersion(*r) for r in rows])


def retire_flow_version(slug: str, version: int) -> Operation[datetime]:
    """Retire a version: no new runs (``workflow.retire_flow_version``); decodes when."""
    return Operation("select workflow.retire_flow_version(%s, %s)", [slug, version], first_value)


def delete_flow_version(slug: str, version: int) -> Operation[Any]:
    """Delete a version no run uses (``workflow.delete_flow_version``)."""
    return Operation("select workflow.delete_flow_version(%s, %s)", [slug, version], first_value)


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
