"""The live feed: one LISTEN connection for the whole server, fanned out to SSE clients.

A background thread owns a :class:`~singularity_workflow.Listener` on ``workflow_run_events``
(every engine event, read from ``workflow.events`` after each NOTIFY, with the listener's
reconnect and replay) plus the messaging channels that some open page watches. It only marks
topics dirty: a run, the runs list, a channel. A flusher task on the event loop wakes the
subscribers of dirty topics at most once per ``coalesce`` seconds, and each SSE stream then
reads a fresh snapshot itself. So a burst of events (a 10,000-task map finishing, a thousand
runs starting) costs each browser at most one update per interval, not one per event.

Watching a new channel restarts the listener with the channel added, replaying from the last
ids seen, so nothing committed meanwhile is lost; the channel set only grows while the server
runs (bounded by the channels that exist).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

from singularity_workflow._client import Client
from singularity_workflow._listen import Listener
from singularity_workflow._messages import EVENTS_CHANNEL, Notification, WorkflowEvent

__all__ = ["LiveHub", "Subscription", "Topic"]

log = logging.getLogger("singularity_workflow.dashboard")

#: A topic: ("runs",), ("run", <run id text>) or ("channel", <name>).
Topic = tuple[str, ...]
RUNS_TOPIC: Final[Topic] = ("runs",)
#: Most channels watched at once (each page opened adds its channel until the server stops).
MAX_CHANNELS: Final = 200
#: Seconds between attempts to (re)start a listener that failed to start.
RESTART_DELAY: Final = 1.0


@dataclass(eq=False)
class Subscription:
    """One SSE stream's interest in a topic; ``wake`` is set when the topic changed."""

    topic: Topic
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class LiveHub:
    """Marks topics dirty from engine events and channel messages; wakes their subscribers."""

    def __init__(self, client: Client, *, coalesce: float = 0.25) -> None:
        self.client = client
        self.coalesce = coalesce
        self._subs: dict[Topic, set[Subscription]] = {}
        self._dirty: set[Topic] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._channels: set[str] = set()
        self._restart = threading.Event()
        #: Counters for tests and the page footer: events seen, wake-ups sent.
        self.events_seen = 0
        self.wakeups = 0
        self.listening = threading.Event()

    # -- life cycle (called from the ASGI lifespan) ------------------------------------------------

    async def start(self) -> None:
        """Start the listening thread and the flusher task on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._flusher = asyncio.create_task(self._flush_forever())
        self._thread = threading.Thread(target=self._listen_forever, name="sw-dashboard-live",
                                        daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread (closing its connection) and the flusher."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.cancel()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, 5)

    # -- subscribers ------------------------------------------------------------------------------

    @contextmanager
    def subscribe(self, topic: Topic) -> Iterator[Subscription]:
        """Register interest in ``topic`` for the duration of the block (one SSE stream)."""
        sub = Subscription(topic)
        self._subs.setdefault(topic, set()).add(sub)
        if topic[0] == "channel":
            self.watch_channel(topic[1])
        try:
            yield sub
        finally:
            subs = self._subs.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[topic]

    def watch_channel(self, channel: str) -> None:
        """Add ``channel`` to the channels listened to (restarts the listener once)."""
        with self._lock:
            if channel in self._channels:
                return
            if len(self._channels) >= MAX_CHANNELS:
                log.warning("dashboard: already watching %d channels; %s is not live",
                            MAX_CHANNELS, channel)
                return
            self._channels.add(channel)
        self._restart.set()

    def mark(self, topic: Topic) -> None:
        """Mark ``topic`` changed (on the event loop); its subscribers wake at the next flush."""
        self._dirty.add(topic)

    async def _flush_forever(self) -> None:
        """Every ``coalesce`` seconds, wake the subscribers of the topics marked since."""
        while True:
            await asyncio.sleep(self.coalesce)
            if not self._dirty:
                continue
            dirty, self._dirty = self._dirty, set()
            for topic in dirty:
                for sub in self._subs.get(topic, ()):
                    sub.wake.set()
                    self.wakeups += 1

    # -- the listening thread --------------------------------------------------------------

    def _deliver(self, topics: list[Topic]) -> None:
        """Hand topics marked in the thread to the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for topic in topics:
            loop.call_soon_threadsafe(self.mark, topic)

    def _listen_forever(self) -> None:
        """Own the listener: receive items, mark their topics, restart it for new channels."""
        listener: Listener | None = None
        last_ids: dict[str, int] = {}
        while not self._stop.is_set():
            if listener is None or self._restart.is_set():
                self._restart.clear()
                if listener is not None:
                    listener.close()
                    listener = None
                with self._lock:
                    channels = [EVENTS_CHANNEL, *sorted(self._channels)]
                try:
                    listener = Listener(channels, client=self.client,
                                        replay_from=dict(last_ids) or None).start()
                except Exception as exc:  # the database is down or a channel name is bad
                    log.warning("dashboard: cannot listen (%s); retrying", exc)
                    self._stop.wait(RESTART_DELAY)
                    continue
                self.listening.set()
            try:
                item = listener.get(timeout=0.2)
            except Exception as exc:
                log.warning("dashboard: listener failed (%s); restarting", exc)
                listener.close()
                listener = None
                continue
            if item is None:
                continue
            if isinstance(item, WorkflowEvent):
                self.events_seen += 1
                last_ids[EVENTS_CHANNEL] = max(last_ids.get(EVENTS_CHANNEL, 0), item.event_id)
                self._deliver([RUNS_TOPIC, ("run", str(item.run_id))])
            elif isinstance(item, Notification) and item.message_id is not None:
                last_ids[item.channel] = max(last_ids.get(item.channel, 0), item.message_id)
                self._deliver([("channel", item.channel)])
        if listener is not None:
            listener.close()


def run_topic(run_id: UUID | str) -> Topic:
    """Return the topic of one run's changes."""
    return ("run", str(run_id))
