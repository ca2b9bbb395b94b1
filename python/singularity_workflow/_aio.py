"""The async client's base: async connections, the loop check, and the replay of Client methods.

``AsyncClient`` (in ``_async_client``, generated from ``Client`` by
``scripts/gen_async_client.py``) has every operation method of ``Client``; each one replays the
sync method's body against a :class:`_Recorder`, a ``Client`` whose ``call`` records the
operation instead of running it, and then awaits the recorded operations here with
``_db.execute_async``. So what an operation sends, how it decodes and what a method checks
before any I/O (empty batches, registering a workflow) is written once, in ``Client`` and
``_operations``, and the async side cannot drift: a test regenerates ``_async_client`` and
compares it with the committed file.

This module holds what is genuinely different on asyncio: where async connections come from
(a connection string, a ``psycopg.AsyncConnection``, an open ``psycopg_pool.AsyncConnectionPool``,
or ``DATABASE_URL``), that a client is bound to the event loop it first ran on (psycopg's async
connections are), and that a closed async client stays closed.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from singularity_workflow import _install
from singularity_workflow._client import Client
from singularity_workflow._db import Operation, execute_async, pool_conninfo, raise_mapped
from singularity_workflow._errors import WorkflowError

__all__ = ["AsyncClientBase", "AsyncDatabase", "ClientClosed", "WrongEventLoop"]

T = TypeVar("T")

#: What ``AsyncClient`` accepts as its database.
AsyncDatabase = str | psycopg.AsyncConnection[Any] | AsyncConnectionPool[Any]


class ClientClosed(RuntimeError):
    """An ``AsyncClient`` was used after ``close()``."""


class WrongEventLoop(RuntimeError):
    """An ``AsyncClient`` was used from another event loop than the one it first ran on."""


@dataclass(frozen=True)
class _Pending:
    """What a recorded ``call`` returns: the index of its operation in the recording."""

    index: int


class _Recorder(Client):
    """A ``Client`` whose ``call`` records the operation instead of executing it (no I/O)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Operation[Any]] = []

    def call(self, op: Operation[T], *, conn: psycopg.Connection[Any] | None = None) -> T:
        self.ops.append(op)
        # The method returns this unchanged (the generator checks that every Client method
        # returns or discards its call's result); the replay swaps in the real value.
        pending: Any = _Pending(len(self.ops) - 1)
        return pending  # type: ignore[no-any-return]


class AsyncClientBase:
    """Connections, close and loop rules of ``AsyncClient``; see the module docstring.

    Constructing one does no I/O. One event loop uses a client: the first call binds it,
    a call from another loop raises :class:`WrongEventLoop`. ``await client.close()`` (or
    ``async with AsyncClient(...)``) closes the connection it opened; after that every call
    raises :class:`ClientClosed`. Given connections and pools are the caller's to close (a
    pool must be open: ``AsyncConnectionPool(url, open=False)`` then ``await pool.open()``).
    """

    def __init__(
        self, database: AsyncDatabase | None = None, *, prepare_threshold: int | None = 5
    ) -> None:
        if database is not None and not isinstance(
            database, str | psycopg.AsyncConnection | AsyncConnectionPool
        ):
            raise TypeError(
                "AsyncClient() takes a connection string, a psycopg.AsyncConnection or a"
                f" psycopg_pool.AsyncConnectionPool, not {type(database).__name__}"
            )
        self.database = database
        self.prepare_threshold = prepare_threshold
        self._own: psycopg.AsyncConnection[Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def __repr__(self) -> str:
        kind = "DATABASE_URL" if self.database is None else type(self.database).__name__
        return f"<AsyncClient {kind}{' closed' if self._closed else ''}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _check(self, what: str) -> asyncio.Lock:
        """Refuse a closed client or a foreign loop, naming the call; return the loop's lock."""
        if self._closed:
            raise ClientClosed(f"AsyncClient.{what}() called after close(); make a new client")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._lock = asyncio.Lock()
        elif self._loop is not loop:
            raise WrongEventLoop(
                f"AsyncClient.{what}() called from another event loop than the one the client"
                " first ran on; psycopg's async connections belong to one loop, so make one"
                " AsyncClient per event loop"
            )
        assert self._lock is not None
        return self._lock

    async def close(self) -> None:
        """Close the connection this client opened (if any); the client cannot be used again."""
        self._closed = True
        conn, self._own = self._own, None
        if conn is not None:
            await conn.close()

    async def call(
        self, op: Operation[T], *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> T:
        """Execute one operation object (see ``_operations``) on ``conn`` or a lent connection."""
        self._check("call")
        if conn is not None:
            return await execute_async(conn, op)
        async with self._lend("call") as lent:
            return await execute_async(lent, op)

    async def _replay(
        self,
        method: Callable[..., Any],
        *args: Any,
        conn: psycopg.AsyncConnection[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``Client.<method>``'s body with a recorder, then await what it recorded."""
        self._check(method.__name__)
        recorder = _Recorder()
        result = method(recorder, *args, **kwargs)
        values = []
        for op in recorder.ops:
            if conn is not None:
                values.append(await execute_async(conn, op))
            else:
                async with self._lend(method.__name__) as lent:
                    values.append(await execute_async(lent, op))
        return values[result.index] if isinstance(result, _Pending) else result

    # -- connections ---------------------------------------------------------------------------

    @property
    def conninfo(self) -> str | None:
        """A connection string for the same database (None: no database and no DATABASE_URL)."""
        database = self.database
        if database is None:
            return os.environ.get("DATABASE_URL") or None
        if isinstance(database, str):
            return database
        if isinstance(database, AsyncConnectionPool):
            return pool_conninfo(database)
        info = database.info
        return make_conninfo(info.dsn, password=info.password) if info.password else info.dsn

    def _require_conninfo(self) -> str:
        conninfo = self.conninfo
        if conninfo is None:
            raise WorkflowError(
                "no database given: pass a connection string, connection or pool to"
                " AsyncClient(), or set DATABASE_URL",
                hint="For example DATABASE_URL=postgresql://user@localhost:5432/app",
            )
        return conninfo

    async def connect_dedicated(self) -> psycopg.AsyncConnection[Any]:
        """Open and return a NEW autocommit async connection; the caller owns and closes it."""
        self._check("connect_dedicated")
        return await psycopg.AsyncConnection.connect(
            self._require_conninfo(), autocommit=True, prepare_threshold=self.prepare_threshold
        )

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """Lend an async connection for one call (``async with client.connection() as conn``)."""
        return self._lend("connection")

    @asynccontextmanager
    async def _lend(self, what: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        lock = self._check(what)
        database = self.database
        if isinstance(database, AsyncConnectionPool):
            async with database.connection() as conn:
                yield conn
        elif isinstance(database, psycopg.AsyncConnection):
            if database.autocommit:
                yield database
            else:
                async with database.transaction():
                    yield database
        else:
            # One own connection, taken in turns by the tasks of this loop (pass a pool for
            # concurrency), as the sync client's own connection is taken in turns by threads.
            async with lock:
                conn = self._own
                if conn is None or conn.closed:
                    conn = self._own = await psycopg.AsyncConnection.connect(
                        self._require_conninfo(),
                        autocommit=True,
                        prepare_threshold=self.prepare_threshold,
                    )
                try:
                    yield conn
                finally:
                    if conn.broken or conn.closed:
                        self._own = None

    # -- schema --------------------------------------------------------------------------------

    async def install(self, *, dry_run: bool = False) -> list[str]:
        """Install or upgrade the schema; return the migrations applied (dry run: pending).

        The installer is sync: it runs in a thread on its own connection to ``conninfo``
        (so, unlike ``Client.install`` on a given connection, never inside your transaction).
        """
        self._check("install")
        conninfo = self._require_conninfo()
        try:
            return await asyncio.to_thread(_install.install, conninfo, dry_run=dry_run)
        except psycopg.Error as exc:
            raise_mapped(exc)


# One default client per event loop: an async connection cannot move between loops.
_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
_defaults_lock = threading.Lock()


def default_for_loop(make: Callable[[], T]) -> T:
    """Return this event loop's default client, made by ``make`` on first use in the loop."""
    loop = asyncio.get_running_loop()
    with _defaults_lock:
        client = _defaults.get(loop)
        if client is None or client._closed:
            client = _defaults[loop] = make()
        return client
