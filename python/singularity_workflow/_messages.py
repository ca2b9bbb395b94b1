"""The values messaging hands out: channel messages, workflow events and notifications.

Kept apart from ``_client`` (which builds the first two from rows) and ``_listen`` (which builds
notifications) so both can import them without importing each other.

Every item a listener yields has the same three things, whatever its channel: ``channel``,
``message_id`` and ``fetch()``. For an application channel it is a :class:`Notification`; for the
engine's event channels (``workflow_run_events``, ``workflow_run_<run_id>``) it is the
:class:`WorkflowEvent` itself, whose ``message_id`` is its ``event_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

__all__ = [
    "EVENTS_CHANNEL",
    "RUN_CHANNEL_PREFIX",
    "ChannelMessage",
    "Item",
    "Notification",
    "WorkflowEvent",
    "event_status",
]

#: The channel the engine notifies (empty payload, one per transaction) when it records events.
EVENTS_CHANNEL: Final = "workflow_run_events"
#: Prefix of the per-run channel ``workflow_run_<run_id>`` (one notification per event).
RUN_CHANNEL_PREFIX: Final = "workflow_run_"

# The run status each event leaves behind, as the per-run notification's "status" carries it
# (step events leave the run's status unchanged: None). Kept equal to _emit_events.sql.
_EVENT_STATUS: Final[dict[str, str]] = {
    "run_started": "started",
    "run_resumed": "started",
    "run_completed": "completed",
    "run_failed": "failed",
    "run_cancelled": "failed",
    "run_paused": "paused",
}


def event_status(event: str) -> str | None:
    """Return the run status an event name implies (``completed`` ...), None for step events."""
    return _EVENT_STATUS.get(event)


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """One persisted message of a channel, as ``read_channel`` returns it.

    ``message_id`` increases per channel (it is the pgmq message id); ``acknowledged`` is true once
    ``ack_message`` archived it (history keeps it).
    """

    channel: str
    message_id: int
    message: Any
    enqueued_at: datetime
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    """One run or step state change recorded by the engine (a row of ``workflow.events``).

    ``event`` is one of run_started, step_completed, step_failed, run_completed, run_failed,
    run_cancelled, run_paused, run_resumed, step_reused (a retry on the current version carried
    that step's output over); ``step_slug`` is set for step events only.
    ``channel`` is the channel it was delivered on (``workflow_run_events`` for history reads).
    """

    event_id: int
    created_at: datetime
    run_id: UUID
    flow_slug: str
    step_slug: str | None
    event: str
    channel: str = EVENTS_CHANNEL

    @property
    def message_id(self) -> int:
        """The event id: what a listener de-duplicates and replays by."""
        return self.event_id

    @property
    def status(self) -> str | None:
        """The run status this event implies (``started``/``completed``/``failed``/``paused``)."""
        return event_status(self.event)

    def fetch(self) -> WorkflowEvent:
        """Return the event itself (it is already read), like ``Notification.fetch``."""
        return self

    def as_json(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict (ids and timestamps as strings)."""
        return {
            "channel": self.channel,
            "event_id": self.event_id,
            "run_id": str(self.run_id),
            "flow_slug": self.flow_slug,
            "step": self.step_slug,
            "event": self.event,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification on an application channel.

    ``message_id`` is the id of the persisted message a ``send_with_notify`` announced, or None
    for a ``notify_only`` signal (then ``payload`` is its text and nothing is stored).
    ``payload`` is the NOTIFY payload as sent (the id as text for persisted messages).
    ``replayed`` is true when the message was read from history (``replay_from`` or after a
    reconnect) rather than received live. ``fetch()`` returns the persisted message (a
    :class:`ChannelMessage`), reading it on first use; None for notify_only signals and for
    messages no longer kept.
    """

    channel: str
    message_id: int | None
    payload: str
    replayed: bool = False
    _loader: Callable[[], ChannelMessage | None] | None = field(
        default=None, repr=False, compare=False
    )
    _cache: list[ChannelMessage | None] = field(default_factory=list, repr=False, compare=False)

    def fetch(self) -> ChannelMessage | None:
        """Return the persisted message (read once, then cached); None if there is none."""
        if self._cache:
            return self._cache[0]
        if self.message_id is None or self._loader is None:
            return None
        if not self._cache:
            self._cache.append(self._loader())
        return self._cache[0]

    def as_json(self) -> dict[str, Any]:
        """Return the notification as a JSON-ready dict, with the message when persisted."""
        out: dict[str, Any] = {
            "channel": self.channel,
            "message_id": self.message_id,
            "payload": self.payload,
        }
        if self.message_id is not None:
            message = self.fetch()
            out["message"] = None if message is None else message.message
            out["enqueued_at"] = None if message is None else message.enqueued_at.isoformat()
        if self.replayed:
            out["replayed"] = True
        return out


#: What a listener yields: a Notification (application channels) or a WorkflowEvent.
Item = Notification | WorkflowEvent
