"""Operations on channels (persisted messages announced by NOTIFY) and the engine's event log.

Listening is not here: LISTEN is session state on a dedicated connection (see ``_listen``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from singularity_workflow._db import Operation, Rows, first_value, no_result, to_jsonb
from singularity_workflow._messages import ChannelMessage, WorkflowEvent
from singularity_workflow._operations._args import need_int, need_text
from singularity_workflow._types import run_uuid

__all__ = [
    "ack_message",
    "last_event_id",
    "last_message_id",
    "notify_only",
    "read_channel",
    "read_events",
    "send_with_notify",
]


def _int(rows: Rows) -> int:
    """Decode a one-value result as an int."""
    return int(rows[0][0])


def _events(rows: Rows) -> list[WorkflowEvent]:
    """Decode ``workflow.read_events`` rows."""
    return [WorkflowEvent(*row) for row in rows]


def send_with_notify(channel: str, message: Any) -> Operation[int]:
    """Persist ``message`` on ``channel`` and notify listeners; decodes its id."""
    need_text(channel, "channel")
    return Operation(
        "select workflow.send_with_notify(%s, %s)",
        [channel, to_jsonb(message, "message")],
        first_value,
    )


def notify_only(channel: str, payload: str = "") -> Operation[None]:
    """NOTIFY ``channel`` with ``payload`` without storing anything."""
    need_text(channel, "channel")
    if not isinstance(payload, str):
        # The common slip is a dict: NOTIFY carries text only; persisted JSON is send_with_notify.
        raise TypeError(
            f"payload must be a str (NOTIFY carries text), not {type(payload).__name__};"
            " send JSON with send_with_notify, or pass json.dumps(value)"
        )
    return Operation("select workflow.notify_only(%s, %s)", [channel, payload], no_result)


def read_channel(
    channel: str, after_id: int = 0, limit: int = 100
) -> Operation[list[ChannelMessage]]:
    """Read up to ``limit`` messages of ``channel`` after ``after_id`` (``read_channel``)."""
    need_text(channel, "channel")
    need_int(after_id, "after_id")
    need_int(limit, "limit")

    def decode(rows: Rows) -> list[ChannelMessage]:
        return [ChannelMessage(channel, *row) for row in rows]

    return Operation(
        "select message_id, message, enqueued_at, acknowledged from workflow.read_channel("
        "channel => %s, after_id => %s, max_messages => %s)",
        [channel, after_id, limit],
        decode,
    )


def ack_message(channel: str, message_id: int) -> Operation[bool]:
    """Acknowledge (archive) a message; decodes whether it was live."""
    need_text(channel, "channel")
    need_int(message_id, "message_id")
    return Operation("select workflow.ack_message(%s, %s)", [channel, message_id], first_value)


def read_events(
    after_id: int = 0, run_id: UUID | str | None = None, limit: int = 100
) -> Operation[list[WorkflowEvent]]:
    """Read up to ``limit`` engine events after ``after_id`` (``workflow.read_events``)."""
    need_int(after_id, "after_id")
    need_int(limit, "limit")
    rid = None if run_id is None else run_uuid(run_id)
    return Operation(
        "select event_id, created_at, run_id, flow_slug, step_slug, event"
        " from workflow.read_events(after_id => %s, for_run_id => %s, max_events => %s)",
        [after_id, rid, limit],
        _events,
    )


def last_message_id(channel: str) -> Operation[int]:
    """Read the highest committed message id of ``channel`` (``workflow.channel_last_id``)."""
    need_text(channel, "channel")
    return Operation("select workflow.channel_last_id(%s)", [channel], _int)


def last_event_id() -> Operation[int]:
    """Read the highest committed event id (0 if none); a read of the events table."""
    return Operation("select coalesce(max(event_id), 0) from workflow.events", [], _int)
