"""Operations on schedules: create, update, delete, list, next fire times, trigger, fire.

Each is one call of the SQL function of the same name; the rules (cron syntax, time zones,
missed-tick policies) live there, so nothing here re-checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from singularity_workflow._db import Operation, Rows, first_value, to_jsonb
from singularity_workflow._types import MissedPolicy, ScheduleInfo

__all__ = [
    "create_schedule",
    "declare_schedule",
    "delete_schedule",
    "fire_due_schedules",
    "list_schedules",
    "next_fire_times",
    "trigger_schedule",
    "update_schedule",
]


def _schedules(rows: Rows) -> list[ScheduleInfo]:
    """Decode ``workflow.list_schedules`` rows (column order = field order)."""
    return [ScheduleInfo(*row) for row in rows]


def _times(rows: Rows) -> list[datetime]:
    """Decode one timestamp per row."""
    return [row[0] for row in rows]


def create_schedule(
    name: str,
    flow_slug: str,
    cron: str,
    input: Mapping[str, Any] | list[Any] | None = None,
    *,
    timezone: str = "UTC",
    missed: MissedPolicy = "skip",
    max_catch_up: int = 10,
    enabled: bool = True,
) -> Operation[datetime]:
    """Create a schedule (``workflow.create_schedule``); decodes its first fire time."""
    return Operation(
        "select workflow.create_schedule(schedule_name => %s, flow_slug => %s, cron => %s,"
        " input => %s, timezone => %s, missed => %s, max_catch_up => %s, enabled => %s)",
        [
            name,
            flow_slug,
            cron,
            to_jsonb({} if input is None else input, "schedule input"),
            timezone,
            missed,
            max_catch_up,
            enabled,
        ],
        first_value,
    )


def declare_schedule(
    name: str,
    flow_slug: str,
    cron: str,
    input: Mapping[str, Any] | list[Any] | None = None,
    *,
    timezone: str = "UTC",
    missed: MissedPolicy = "skip",
    max_catch_up: int = 10,
    enabled: bool = True,
) -> Operation[datetime | None]:
    """Create a schedule or update it keeping its enabled flag (``workflow.declare_schedule``)."""
    return Operation(
        "select workflow.declare_schedule(schedule_name => %s, flow_slug => %s, cron => %s,"
        " input => %s, timezone => %s, missed => %s, max_catch_up => %s, enabled => %s)",
        [
            name,
            flow_slug,
            cron,
            to_jsonb({} if input is None else input, "schedule input"),
            timezone,
            missed,
            max_catch_up,
            enabled,
        ],
        first_value,
    )


def update_schedule(
    name: str,
    *,
    flow_slug: str | None = None,
    cron: str | None = None,
    input: Mapping[str, Any] | list[Any] | None = None,
    timezone: str | None = None,
    missed: MissedPolicy | None = None,
    max_catch_up: int | None = None,
    enabled: bool | None = None,
) -> Operation[datetime | None]:
    """Change a schedule; None keeps a value (``workflow.update_schedule``); decodes next fire."""
    return Operation(
        "select workflow.update_schedule(schedule_name => %s, flow_slug => %s, cron => %s,"
        " input => %s, timezone => %s, missed => %s, max_catch_up => %s, enabled => %s)",
        [
            name,
            flow_slug,
            cron,
            None if input is None else to_jsonb(input, "schedule input"),
            timezone,
            missed,
            max_catch_up,
            enabled,
        ],
        first_value,
    )


def delete_schedule(name: str) -> Operation[bool]:
    """Delete a schedule (``workflow.delete_schedule``); decodes whether one was deleted."""
    return Operation("select workflow.delete_schedule(%s)", [name], first_value)


def list_schedules() -> Operation[list[ScheduleInfo]]:
    """List every schedule with its next and last fire (``workflow.list_schedules``)."""
    return Operation(
        "select schedule_name, flow_slug, cron, timezone, input, enabled, missed, max_catch_up,"
        " next_fire_at, last_fired_at, last_run_id, last_run_state, last_error"
        " from workflow.list_schedules()",
        [],
        _schedules,
    )


def next_fire_times(name: str, n: int = 5) -> Operation[list[datetime]]:
    """Read the next ``n`` ticks of a schedule after now (``workflow.next_fire_times``)."""
    return Operation("select * from workflow.next_fire_times(%s, %s)", [name, n], _times)


def trigger_schedule(name: str) -> Operation[UUID]:
    """Start a run of a schedule now, outside its ticks (``workflow.trigger_schedule``)."""
    return Operation("select workflow.trigger_schedule(%s)", [name], first_value)


def fire_due_schedules() -> Operation[int]:
    """Fire every due tick now (``workflow.fire_due_schedules``); decodes the runs started.

    The engine's own sweep already does this from claims, starts and status reads; this is for
    callers that want it at once.
    """
    return Operation("select workflow.fire_due_schedules()", [], first_value)
