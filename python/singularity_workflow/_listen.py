"""Listeners: receive channel messages and workflow events as they are committed.

``listen(*channels)`` returns a :class:`Listener` that is already listening, on a connection of
its own (LISTEN is session state: a pooled or shared connection would lose it, or leak it to the
next borrower). Use it as an iterator (``for item in listener``), with ``get(timeout)``, with a
callback (``on_message``, run on a background thread), or with ``async for``. All forms take
items from one method, ``get``, which owns the receive logic: the callback thread and the async
feeder thread merely call it.

What is delivered, per kind of channel:

* an application channel (``^[a-z_][a-z0-9_]{0,41}$``): a :class:`Notification` per message
  ``send_with_notify`` persisted (``message_id`` set, ``fetch()`` reads the message) or per
  ``notify_only`` signal (``message_id`` None, the text in ``payload``);
* ``workflow_run_events``: every engine event (:class:`WorkflowEvent`), read from the event log
  after the last id seen (the notification itself is empty, one per transaction);
* ``workflow_run_<run_id>``: the events of that run (:class:`WorkflowEvent`);
* ``workflow_q_<queue>``: the engine's wake-ups of a queue, as payload-only notifications.

The delivery guarantee: **at least once, with ids to de-duplicate by**, per channel, for everything
persisted (channel messages, events) with an id above the starting point: the newest id at
``listen()`` time, or ``replay_from``. If the connection drops, the listener's notifier
(``_notify.Notifier``, the package's one LISTEN-with-reconnect) reconnects (at once, then after
0.1, 0.2, 0.4 ... up to 5 s between attempts) and LISTENs again, and the listener replays each
channel's history after the last id it can vouch for before it resumes live delivery; ids it
already delivered are suppressed, so in practice each message arrives exactly once. Order: per
channel, in commit order (which is id order for one sender); replays are in id order. Ids a
concurrent transaction took but had not committed are waited for for ``gap_timeout`` seconds (they
are replayed if the connection drops meanwhile); after that a late commit is still delivered live,
but no longer replayed.
``notify_only`` signals are not persisted: those sent while the connection was down are lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import psycopg

from singularity_workflow._client import Client, default_client
from singularity_workflow._errors import InvalidName
from singularity_workflow._messages import (
    EVENTS_CHANNEL,
    RUN_CHANNEL_PREFIX,
    ChannelMessage,
    Item,
    Notification,
    WorkflowEvent,
)
from singularity_workflow._names import CHANNEL_NAME, QUEUE_NAME, RESERVED_CHANNEL_PREFIXES
from singularity_workflow._notify import RECONNECT, Notifier, is_connection_error

__all__ = [
    "Listener",
    "ack_message",
    "listen",
    "notify_only",
    "read_channel",
    "read_events",
    "send_with_notify",
    "unlisten",
]

log = logging.getLogger("singularity_workflow.listen")

#: Longest a wait for notifications lasts before the listener checks whether it was closed: the
#: most ``close()`` waits for a receiving thread (an idle listener wakes 5 times a second).
POLL_SECONDS: Final = 0.2
#: Seconds a missing id (a concurrent sender's uncommitted, or rolled-back, message) is waited for
#: before the listener stops counting on replaying it.
DEFAULT_GAP_TIMEOUT: Final = 5.0
#: Rows per history read when replaying (read_channel's maximum page).
PAGE: Final = 1000
#: Ids remembered for de-duplication beyond what the cursor's floor covers.
_RECENT_IDS: Final = 10_000

#: The prefix of a queue's wake-up channel (the first of the engine's reserved prefixes).
_QUEUE_PREFIX: Final = RESERVED_CHANNEL_PREFIXES[0]


class _Kind(enum.Enum):
    """What a channel carries, which decides how its notifications become items."""

    APP = "app"  # send_with_notify / notify_only: payload is a message id (or free text)
    EVENTS = "events"  # workflow_run_events: empty payload, read workflow.events
    RUN = "run"  # workflow_run_<id>: JSON payload with event_id, read that run's events
    RAW = "raw"  # workflow_q_<queue>: wake-ups, nothing persisted


def _classify(channel: str) -> tuple[_Kind, UUID | None]:
    """Return the kind of ``channel`` (and its run id); InvalidName (WF001) if it is not valid."""
    if channel == EVENTS_CHANNEL:
        return _Kind.EVENTS, None
    if channel.startswith(RUN_CHANNEL_PREFIX):
        text = channel[len(RUN_CHANNEL_PREFIX) :]
        try:
            run_id = UUID(text)
        except ValueError:
            run_id = None
        if run_id is not None and str(run_id) == text:
            return _Kind.RUN, run_id
    elif channel.startswith(_QUEUE_PREFIX):
        if QUEUE_NAME.fullmatch(channel[len(_QUEUE_PREFIX) :]):
            return _Kind.RAW, None
    elif CHANNEL_NAME.fullmatch(channel):
        return _Kind.APP, None
    raise InvalidName(
        f"invalid channel name: {channel!r}",
        hint="A channel name must match ^[a-z_][a-z0-9_]{0,41}$, or be one of the engine's"
        " channels: workflow_run_events, workflow_run_<run id>, workflow_q_<queue>.",
    )


class _Cursor:
    """Which ids of one channel were delivered: for de-duplication and for where to replay from.

    Dense id spaces (a channel's message ids, the event log) have no holes except ids that a
    concurrent transaction holds uncommitted or rolled back. There ``floor`` is the highest id
    such that every id up to it was delivered or given up on, and ``above`` holds the delivered
    ids beyond a hole; a replay reads after ``floor``, so a late commit in a hole is not lost. A
    hole older than ``gap_timeout`` is given up (the floor moves past it). Sparse id spaces (one
    run's events among all runs') cannot tell holes from other runs' ids: there the floor is
    simply the highest id delivered. Both remember recent ids to suppress duplicates.
    """

    def __init__(self, start: int, *, dense: bool, gap_timeout: float) -> None:
        self.floor = start
        self.dense = dense
        self.gap_timeout = gap_timeout
        self.above: set[int] = set()
        self.gap_since: float | None = None
        self._recent: deque[int] = deque()
        self._recent_set: set[int] = set()

    def accept(self, message_id: int) -> bool:
        """Record ``message_id`` as delivered; False if it was delivered before (a duplicate)."""
        if message_id in self._recent_set or message_id in self.above:
            return False
        if self.dense:
            if message_id <= self.floor:
                # At or below the floor and not recent: delivered long ago, or a hole given up
                # on whose transaction finally committed. Recent ids cover the first case for
                # the last _RECENT_IDS messages; older ones are taken as late commits.
                pass
            else:
                self.above.add(message_id)
                self._advance()
        else:
            self.floor = max(self.floor, message_id)
        self._remember(message_id)
        return True

    def _remember(self, message_id: int) -> None:
        """Keep ``message_id`` among the recent ids (bounded)."""
        self._recent.append(message_id)
        self._recent_set.add(message_id)
        if len(self._recent) > _RECENT_IDS:
            self._recent_set.discard(self._recent.popleft())

    def _advance(self) -> None:
        """Move the floor over delivered ids that follow it without a hole."""
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.remove(self.floor)
        if not self.above:
            self.gap_since = None
        elif self.gap_since is None:
            self.gap_since = time.monotonic()

    def settle(self, message_id: int) -> None:
        """Give up on every hole below ``message_id`` (a delivered id older than gap_timeout)."""
        if self.dense and message_id > self.floor:
            self.floor = message_id
            self.above = {i for i in self.above if i > message_id}
            self.gap_since = None
            self._advance()

    def expire_gaps(self, now: float) -> None:
        """Give up on the lowest hole once it is older than ``gap_timeout``."""
        if self.gap_since is not None and now - self.gap_since >= self.gap_timeout:
            self.floor = min(self.above) - 1
            self.gap_since = None
            self._advance()


@dataclasses.dataclass
class _Channel:
    """One channel a listener watches: its kind, run id (per-run channels) and cursor."""

    name: str
    kind: _Kind
    run_id: UUID | None
    cursor: _Cursor | None = None


def _load_message(client: Client, channel: str, message_id: int) -> ChannelMessage | None:
    """Read one message by id (through the client, not the listener's busy connection)."""
    found = client.read_channel(channel, after_id=message_id - 1, limit=1)
    return found[0] if found and found[0].message_id == message_id else None


class Listener:
    """Notifications from one or more channels, on a dedicated connection; see the module doc.

    Create it with :func:`listen` (or construct it and use ``with``, which starts it). Close it
    with ``close()``, :func:`unlisten` or by leaving the ``with`` block. ``reconnects`` counts the
    reconnections so far; ``error`` holds what stopped a callback or async feeder thread.
    """

    def __init__(
        self,
        channels: Iterable[str],
        *,
        client: Client | None = None,
        replay_from: int | Mapping[str, int] | None = None,
        on_message: Callable[[Item], object] | None = None,
        gap_timeout: float = DEFAULT_GAP_TIMEOUT,
    ) -> None:
        names = list(dict.fromkeys(channels))
        if not names:
            raise ValueError("listen() needs at least one channel")
        self._channels: dict[str, _Channel] = {}
        for name in names:
            kind, run_id = _classify(name)
            self._channels[name] = _Channel(name, kind, run_id)
        if isinstance(replay_from, Mapping):
            unknown = set(replay_from) - set(names)
            if unknown:
                raise ValueError(f"replay_from names channels not listened to: {sorted(unknown)}")
        self._client = client
        self._replay_from = replay_from
        self._on_message = on_message
        self._gap_timeout = gap_timeout
        self._notifier = Notifier(
            lambda: self.client.connect_dedicated(), names, on_reconnect=self._replay,
            name=f"listener on {', '.join(names)}",
        )
        self._pending: deque[Item] = deque()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # held by whoever is receiving (one at a time)
        self._started = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "listening" if self._started else "not started"
        return f"<Listener {', '.join(self._channels)} {state}>"

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels listened to, in the order given."""
        return tuple(self._channels)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._stop.is_set()

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the listening connection (None while disconnected)."""
        return self._notifier.backend_pid

    @property
    def reconnects(self) -> int:
        """How many times the listener reconnected so far."""
        return self._notifier.reconnects

    @property
    def client(self) -> Client:
        """The client whose database is listened to (the default client if none was given)."""
        if self._client is None:
            self._client = default_client()
        return self._client

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> Listener:
        """Connect, LISTEN, fix each channel's starting id, queue any replay; idempotent.

        Returns once listening: anything committed from now on is delivered. With an
        ``on_message`` callback, starts the thread that calls it.
        """
        if self._started:
            return self
        if self.closed:
            raise RuntimeError("this listener was closed")
        with self._lock:
            conn = self._notifier.open()
            try:
                for channel in self._channels.values():
                    if channel.kind is _Kind.RAW:
                        continue
                    start = self._start_id(channel, conn)
                    dense = channel.kind is not _Kind.RUN
                    channel.cursor = _Cursor(start, dense=dense, gap_timeout=self._gap_timeout)
                if self._replay_from is not None:
                    self._replay(conn)
            except BaseException:
                self._notifier.disconnect()
                raise
            self._started = True
        if self._on_message is not None:
            self._thread = threading.Thread(
                target=self._run_callback, name=f"sw-listen-{next(iter(self._channels))}",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening and close the connection; iteration then ends. Safe to repeat."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10 * POLL_SECONDS + RECONNECT.cap)
        # A receiver in get() notices the stop within POLL_SECONDS and closes the connection
        # itself; wait for it, so the connection is closed when close() returns.
        if self._lock.acquire(timeout=10 * POLL_SECONDS):
            try:
                self._notifier.close()
            finally:
                self._lock.release()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Listener:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.close)

    # -- receiving: the one source of truth -----------------------------------------------------

    def get(self, timeout: float | None = None) -> Item | None:
        """Return the next item, waiting up to ``timeout`` seconds (None: until one arrives).

        None when the wait timed out or the listener was closed. Reconnects (and replays) when
        the connection is lost, within the same wait. Only one thread receives at a time.
        """
        if not self._started and not self.closed:
            self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._pending:
                    return self._pending.popleft()
                if self._stop.is_set():
                    self._notifier.close()
                    return None
                wait = POLL_SECONDS
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return None
                self._receive(wait)

    def __iter__(self) -> Listener:
        if self._on_message is not None:
            raise RuntimeError("this listener delivers to its on_message callback")
        return self

    def __next__(self) -> Item:
        item = self.get()
        if item is None:
            raise StopIteration
        return item

    def __aiter__(self) -> AsyncIterator[Item]:
        if self._on_message is not None:
            raise RuntimeError("this listener delivers to its on_message callback")
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Item]:
        """Yield items in the event loop; a thread runs ``get`` and hands them over a queue."""
        if not self._started:
            await asyncio.to_thread(self.start)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Item | BaseException | None] = asyncio.Queue()
        abandoned = threading.Event()

        def feed() -> None:
            while not abandoned.is_set():
                try:
                    item = self.get(timeout=POLL_SECONDS)
                    if item is None and not self.closed:
                        continue
                except BaseException as exc:  # handed to the consumer, which re-raises it
                    item_or_error: Item | BaseException | None = exc
                else:
                    item_or_error = item
                if abandoned.is_set() and item_or_error is not None:
                    # The consumer left: keep the item for whoever receives next.
                    if not isinstance(item_or_error, BaseException):
                        self._pending.appendleft(item_or_error)
                    return
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item_or_error)
                except RuntimeError:  # the event loop is closed
                    return
                if item_or_error is None or isinstance(item_or_error, BaseException):
                    return

        feeder = threading.Thread(target=feed, name="sw-listen-async", daemon=True)
        feeder.start()
        try:
            while True:
                got = await queue.get()
                if got is None:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            abandoned.set()

    def _run_callback(self) -> None:
        """Run the callback thread: hand every item to ``on_message`` until closed."""
        assert self._on_message is not None
        while not self._stop.is_set():
            try:
                item = self.get()
            except BaseException as exc:
                self.error = exc
                log.exception("listener on %s stopped", ", ".join(self._channels))
                return
            if item is None:
                return
            try:
                self._on_message(item)
            except Exception:
                # One bad message must not end the subscription; the error is logged.
                log.exception("on_message failed for %r", item)

    # -- internals (called with self._lock held) -------------------------------------------------

    def _start_id(self, channel: _Channel, conn: psycopg.Connection[Any]) -> int:
        """Return the id after which ``channel`` delivers: replay_from, else the newest now."""
        replay = self._replay_from
        if isinstance(replay, Mapping):
            if channel.name in replay:
                return int(replay[channel.name])
        elif replay is not None:
            return int(replay)
        if channel.kind is _Kind.APP:
            return self.client.last_message_id(channel.name, conn=conn)
        return self.client.last_event_id(conn=conn)

    def _receive(self, timeout: float) -> None:
        """Wait up to ``timeout`` for notifications and queue their items.

        The notifier reconnects when the connection is lost, and then calls :meth:`_replay`;
        a connection lost while reading the history is left to it the same way.
        """
        notes = self._notifier.receive(timeout, stop_after=1)
        conn = self._notifier.connection
        if notes and conn is not None:
            try:
                self._handle(notes, conn)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                # Nothing read is lost: the replay after the reconnect starts at the cursors.
                log.warning("listener on %s lost its connection (%s); reconnecting",
                            ", ".join(self._channels), str(exc).strip().partition("\n")[0])
                self._notifier.disconnect()
                return
        now = time.monotonic()
        for channel in self._channels.values():
            if channel.cursor is not None:
                channel.cursor.expire_gaps(now)

    def _replay(self, conn: psycopg.Connection[Any]) -> None:
        """Queue each channel's persisted history after its cursor, in id order.

        Also what the notifier calls after a reconnect (a connection error here makes it
        reconnect again; the cursors keep what was already delivered).
        """
        for channel in self._channels.values():
            if channel.kind is _Kind.APP:
                self._read_messages(channel, conn, replayed=True)
            elif channel.kind is not _Kind.RAW:
                self._read_events(channel, conn, None)

    def _read_messages(self, channel: _Channel, conn: psycopg.Connection[Any], *,
                       replayed: bool) -> None:
        """Queue a channel's messages after its cursor's floor (all pages)."""
        cursor = channel.cursor
        assert cursor is not None
        after = cursor.floor
        while True:
            page = self.client.read_channel(channel.name, after_id=after, limit=PAGE, conn=conn)
            settled = _settled_before(self._gap_timeout)
            for message in page:
                if cursor.accept(message.message_id):
                    self._pending.append(Notification(
                        channel.name, message.message_id, str(message.message_id),
                        replayed, None, [message],
                    ))
                if message.enqueued_at < settled:
                    cursor.settle(message.message_id)
            if len(page) < PAGE:
                return
            after = page[-1].message_id

    def _read_events(self, channel: _Channel, conn: psycopg.Connection[Any],
                     lowest_new: int | None) -> None:
        """Queue a channel's events after its cursor (or from ``lowest_new``), all pages."""
        cursor = channel.cursor
        assert cursor is not None
        after = cursor.floor if lowest_new is None else min(cursor.floor, lowest_new - 1)
        while True:
            page = self.client.read_events(after, channel.run_id, PAGE, conn=conn)
            settled = _settled_before(self._gap_timeout)
            for event in page:
                if cursor.accept(event.event_id):
                    if channel.kind is _Kind.RUN:
                        event = dataclasses.replace(event, channel=channel.name)
                    self._pending.append(event)
                if event.created_at < settled:
                    cursor.settle(event.event_id)
            if len(page) < PAGE:
                return
            after = page[-1].event_id

    def _handle(self, notes: list[psycopg.Notify], conn: psycopg.Connection[Any]) -> None:
        """Turn a batch of notifications into items (reading events once per channel)."""
        events_due: dict[str, int | None] = {}
        for note in notes:
            channel = self._channels.get(note.channel)
            if channel is None:
                continue
            if channel.kind is _Kind.APP:
                self._handle_app(channel, note.payload)
            elif channel.kind is _Kind.RAW:
                self._pending.append(Notification(channel.name, None, note.payload))
            elif channel.kind is _Kind.EVENTS:
                events_due[channel.name] = None
            else:
                # Per-run payloads name the event id: read from the lowest one, so an event
                # that committed after a higher one of the same run is not skipped.
                event_id = _event_id(note.payload)
                lowest = events_due.get(channel.name, event_id)
                if lowest is not None and event_id is not None:
                    lowest = min(lowest, event_id)
                events_due[channel.name] = lowest
        for name, lowest in events_due.items():
            self._read_events(self._channels[name], conn, lowest)

    def _handle_app(self, channel: _Channel, payload: str) -> None:
        """Queue the item of one notification on an application channel."""
        cursor = channel.cursor
        assert cursor is not None
        try:
            message_id = int(payload) if payload.isdigit() else None
        except ValueError:  # pragma: no cover - isdigit() accepts a few non-ASCII digits
            message_id = None
        if message_id is None:
            self._pending.append(Notification(channel.name, None, payload))
        elif cursor.accept(message_id):
            client = self.client
            name = channel.name
            self._pending.append(Notification(
                name, message_id, payload, False,
                lambda: _load_message(client, name, message_id),
            ))


def _settled_before(gap_timeout: float) -> datetime:
    """Return the time before which a history row's lower holes are given up on.

    Holes in a history read are ids of transactions still open (or rolled back, or of pruned
    rows). One below a row written more than ``gap_timeout`` ago is as old as that row, so it is
    given up at once, as it would be after waiting: otherwise a replay over a long, pruned
    history would keep re-reading all of it until every hole timed out.
    """
    return datetime.now(UTC) - timedelta(seconds=gap_timeout)


def _event_id(payload: str) -> int | None:
    """Return the event_id of a per-run notification's JSON payload (None if it has none)."""
    match = re.search(r'"event_id"\s*:\s*(\d+)', payload)
    return int(match.group(1)) if match else None


def listen(
    *channels: str,
    client: Client | None = None,
    replay_from: int | Mapping[str, int] | None = None,
    on_message: Callable[[Item], object] | None = None,
    gap_timeout: float = DEFAULT_GAP_TIMEOUT,
) -> Listener:
    """Start listening on ``channels`` and return the :class:`Listener` (see the module doc).

    ``replay_from``: deliver first every persisted message (or event) with an id above this
    one, for all channels or per channel as a mapping (0: the whole history); None (default)
    delivers only what commits from now on. ``on_message``: call it with each item on a
    background thread instead of iterating. ``client``: the database (default: DATABASE_URL).
    InvalidName (WF001) for a channel name that is not valid.
    """
    return Listener(
        channels, client=client, replay_from=replay_from, on_message=on_message,
        gap_timeout=gap_timeout,
    ).start()


def unlisten(listener: Listener) -> None:
    """Stop ``listener`` and close its connection (the same as ``listener.close()``)."""
    listener.close()


# -- module-level forms over the default client (DATABASE_URL), as the seed calls them ----------


def send_with_notify(channel: str, message: Any, *, client: Client | None = None) -> int:
    """Persist ``message`` on ``channel`` and notify its listeners; return the message id."""
    return (client or default_client()).send_with_notify(channel, message)


def notify_only(channel: str, payload: str = "", *, client: Client | None = None) -> None:
    """NOTIFY ``channel`` with ``payload`` (under 8,000 bytes), persisting nothing."""
    (client or default_client()).notify_only(channel, payload)


def read_channel(
    channel: str, after_id: int = 0, limit: int = 100, *, client: Client | None = None
) -> list[ChannelMessage]:
    """Return a channel's messages with ids above ``after_id`` (history, in id order)."""
    return (client or default_client()).read_channel(channel, after_id, limit)


def ack_message(channel: str, message_id: int, *, client: Client | None = None) -> bool:
    """Acknowledge (archive) a channel message; False if it was not live."""
    return (client or default_client()).ack_message(channel, message_id)


def read_events(
    after_id: int = 0,
    run_id: UUID | str | None = None,
    limit: int = 100,
    *,
    client: Client | None = None,
) -> list[WorkflowEvent]:
    """Return the engine's events with ids above ``after_id`` (of one run, with ``run_id``)."""
    return (client or default_client()).read_events(after_id, run_id, limit)
