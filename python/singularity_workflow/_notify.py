"""The notifier: a dedicated LISTEN connection that reconnects by itself, and the back-off policy.

Everything in the package that waits for ``NOTIFY`` uses this one component: the worker engine
(wake-ups on ``workflow_q_<queue>``, and for ``execute`` the run's ``workflow_run_<run_id>``),
the messaging :class:`~singularity_workflow.Listener`, and ``singularity-workflow run --wait``.

LISTEN is session state, so the connection is dedicated (never pooled: a pool would lose the
LISTEN, or leak it to the next borrower). :meth:`Notifier.open` connects and LISTENs before it
returns, so a caller that opens first and then starts work (``start_flow``) misses nothing that
commits afterwards. :meth:`Notifier.receive` waits for notifications; when the connection is
lost it is closed, and the next ``receive`` reconnects at once, then backs off by
:data:`RECONNECT` (0.1 s doubling to 5 s) while the server stays away. After every reconnect
``on_reconnect(connection)`` runs: notifications sent while the connection was down are lost,
and only the owner knows how to make up for them (the engine looks at every queue again, the
Listener replays the persisted history). A connection error inside ``on_reconnect`` counts as
one more lost connection.

One thread at a time uses a notifier (the thread that receives also closes it); ``close`` from
another thread is safe only while nobody receives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql

__all__ = [
    "RECONNECT", "Backoff", "BackoffPolicy", "Notifier", "connection_lost", "is_connection_error",
]

log = logging.getLogger("singularity_workflow.notify")


@dataclass(frozen=True)
class BackoffPolicy:
    """Delays between attempts: ``first``, doubling, never above ``cap`` (seconds)."""

    first: float
    cap: float

    def after(self, previous: float) -> float:
        """Return the delay that follows ``previous`` (0: no attempt failed yet)."""
        return min(self.cap, max(self.first, 2 * previous))


#: How every connection of the package is re-opened after a loss: a database restart usually
#: takes seconds, so the first retries are quick and the cap keeps a long outage cheap.
RECONNECT: Final = BackoffPolicy(first=0.1, cap=5.0)


class Backoff:
    """The running state of one :class:`BackoffPolicy`: the delay the next failure waits."""

    def __init__(self, policy: BackoffPolicy = RECONNECT) -> None:
        self.policy = policy
        self.delay = 0.0

    def next(self) -> float:
        """Record one more failure and return how long to wait before the next attempt."""
        self.delay = self.policy.after(self.delay)
        return self.delay

    def reset(self) -> None:
        """Record a success: the next failure waits ``policy.first`` again."""
        self.delay = 0.0


def is_connection_error(exc: BaseException) -> bool:
    """Tell a lost or broken connection (reconnect and retry) from an error in the request."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError | psycopg.InterfaceError):
            return True
        seen = seen.__cause__
    return False


#: SQLSTATEs of a server ending the session itself: shut down by an administrator, crashed,
#: not accepting connections yet (class 08, connection exceptions, is checked by prefix).
_SESSION_ENDED: Final = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(exc: BaseException) -> bool:
    """Tell whether ``exc`` means the session is gone, not that one request was refused.

    Narrower than :func:`is_connection_error`, for code that handles the server's verdicts
    itself: psycopg files a lock timeout (55P03), a deadlock (40P01) or a cancelled statement
    under ``OperationalError`` too, yet after them the session is fine and the transaction
    only needs a retry. Lost is: an ``InterfaceError``, an ``OperationalError`` the client
    raised itself (no SQLSTATE: the socket closed, a failed connect), a connection exception
    (class 08) or a session the server ended (57P01-57P03).
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.InterfaceError):
            return True
        if isinstance(seen, psycopg.OperationalError):
            state = getattr(seen, "sqlstate", None)
            return state is None or state.startswith("08") or state in _SESSION_ENDED
        seen = seen.__cause__
    return False


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().partition("\n")[0]


class Notifier:
    """LISTEN on ``channels`` over a dedicated connection from ``connect``; see the module doc.

    ``connect`` returns a new autocommit connection (``Client.connect_dedicated``, or a direct
    connection string's connect behind pgbouncer). ``name`` appears in the logs.
    ``reconnects`` counts the reconnections so far.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        channels: Iterable[str],
        *,
        on_reconnect: Callable[[psycopg.Connection[Any]], None] | None = None,
        name: str = "notifier",
        policy: BackoffPolicy = RECONNECT,
    ) -> None:
        self.channels = tuple(dict.fromkeys(channels))
        self.name = name
        self.reconnects = 0
        self._connect = connect
        self._on_reconnect = on_reconnect
        self._backoff = Backoff(policy)
        self._next_attempt_at = 0.0
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = threading.Event()

    def __enter__(self) -> Notifier:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connection(self) -> psycopg.Connection[Any] | None:
        """The listening connection (None while disconnected); for reads that must share it."""
        conn = self._conn
        return None if conn is None or conn.closed else conn

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the listening connection (None while disconnected)."""
        conn = self.connection
        return None if conn is None else conn.info.backend_pid

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed.is_set()

    def open(self) -> psycopg.Connection[Any]:
        """Connect and LISTEN on every channel; raise if the database cannot be reached.

        When it returns, every notification committed from then on is delivered.
        """
        conn = self._connect()
        try:
            for channel in self.channels:
                conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
        except BaseException:
            conn.close()
            raise
        self.disconnect()
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close the connection; :meth:`receive` returns nothing from now on. Safe to repeat."""
        self._closed.set()
        self.disconnect()

    def receive(self, timeout: float, *, stop_after: int | None = None) -> list[psycopg.Notify]:
        """Wait up to ``timeout`` seconds for notifications and return them (maybe none).

        ``stop_after``: return as soon as that many arrived (without it, the call collects
        for the whole ``timeout``; a caller that must act at once passes 1). A lost connection
        is closed and logged (nothing is raised); the next call reconnects, backing off while
        it fails, and runs ``on_reconnect``. Errors that are not about the connection are raised.
        """
        if self.closed:
            return []
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._reconnect(time.monotonic() + timeout)
            return []
        try:
            return list(conn.notifies(timeout=max(0.0, timeout), stop_after=stop_after))
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            if not self.closed:
                log.warning("%s lost its connection (%s); reconnecting", self.name,
                            _first_line(exc))
            self.disconnect()
            return []

    def _reconnect(self, deadline: float) -> None:
        """Reconnect once the back-off allows (waiting no later than ``deadline``)."""
        now = time.monotonic()
        if now < self._next_attempt_at:
            if self._closed.wait(min(self._next_attempt_at, deadline) - now):
                return
            if time.monotonic() < self._next_attempt_at:
                return
        try:
            conn = self.open()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self._failed(f"reconnect failed ({_first_line(exc)})")
            return
        self.reconnects += 1
        if self._on_reconnect is not None:
            try:
                self._on_reconnect(conn)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                self.disconnect()
                self._failed(f"lost its connection again ({_first_line(exc)})")
                return
        self._backoff.reset()
        log.info("%s reconnected", self.name)

    def _failed(self, what: str) -> None:
        delay = self._backoff.next()
        self._next_attempt_at = time.monotonic() + delay
        log.warning("%s: %s; next try in %.1f s", self.name, what, delay)

    def disconnect(self) -> None:
        """Close the connection but stay usable: the next :meth:`receive` reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass
