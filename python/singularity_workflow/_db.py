"""The database layer: where connections come from, how an operation runs, how errors map.

An :class:`Operation` is one engine call written down as data: its SQL text, its parameters
and a function that decodes its rows. The modules of ``_operations`` build them, one function
per call of the SQL core; this module executes them, on a psycopg ``Connection``
(:func:`execute`) or ``AsyncConnection`` (:func:`execute_async`). The operation is the same
object either way, so a sync and an async client share one definition of every call and only
the few lines here differ.

Where the connections come from (:class:`Connector`, given as ``Client(database)``):

* a connection string: one connection opened on first use and kept; calls from several threads
  take turns on it (pass a pool for real concurrency);
* a ``psycopg.Connection``: used as given. In autocommit mode every call is its own transaction;
  otherwise each call runs in ``conn.transaction()``, which commits at once on an idle connection
  and becomes a savepoint inside a transaction the caller opened;
* a ``psycopg_pool.ConnectionPool``: one connection is borrowed per call;
* nothing: ``DATABASE_URL``, read at first use, not in the constructor.

Errors raised with a ``WF`` SQLSTATE become the exceptions of ``_errors``; other psycopg errors
propagate unchanged. This module imports only ``_errors`` of this package.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Generic, NoReturn, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from singularity_workflow._errors import WorkflowError, error_from_psycopg

__all__ = [
    "Connector",
    "Database",
    "Operation",
    "Rows",
    "clean_text",
    "execute",
    "execute_async",
    "first_value",
    "no_result",
    "pool_conninfo",
    "raise_mapped",
    "to_jsonb",
]

T = TypeVar("T")

#: What ``Client`` accepts as its database.
Database = str | psycopg.Connection[Any] | ConnectionPool[Any]

#: The rows of one statement, as psycopg's default row factory returns them.
Rows = list[tuple[Any, ...]]

# Keyword arguments of a pool that configure the psycopg Connection object, not libpq: they must
# not leak into a connection string rebuilt from the pool's settings.
_NON_LIBPQ_KWARGS: Final = frozenset(
    {"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"}
)


@dataclass(frozen=True, slots=True)
class Operation(Generic[T]):
    """One engine call as data: ``query`` with ``params``, its rows decoded by ``decode``.

    Built by the functions of ``_operations`` (which check and convert the arguments, so a bad
    value fails before any I/O) and executed by :func:`execute` or :func:`execute_async`.
    """

    query: str
    params: Sequence[Any] | Mapping[str, Any]
    decode: Callable[[Rows], T]


def first_value(rows: Rows) -> Any:
    """Decode a one-row, one-column result: that value."""
    return rows[0][0]


def no_result(rows: Rows) -> None:
    """Decode a call whose result is not used (a void function, or one only run for its effect)."""
    return None


def execute(conn: psycopg.Connection[Any], op: Operation[T]) -> T:
    """Run ``op`` on ``conn`` and decode its rows; WF errors are raised as WorkflowError."""
    try:
        rows = conn.execute(op.query, op.params).fetchall()
    except psycopg.Error as exc:
        raise_mapped(exc, conn)
    return op.decode(rows)


async def execute_async(conn: psycopg.AsyncConnection[Any], op: Operation[T]) -> T:
    """Run ``op`` on an async connection and decode its rows: the async twin of :func:`execute`."""
    try:
        cur = await conn.execute(op.query, op.params)
        rows = await cur.fetchall()
    except psycopg.Error as exc:
        raise_mapped(exc, conn)
    return op.decode(rows)


def raise_mapped(
    exc: psycopg.Error,
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | None = None,
) -> NoReturn:
    """Re-raise ``exc`` as its WorkflowError subclass when ``_errors`` maps it, else as is.

    ``conn`` (the connection the error came from) names the database in SchemaNotInstalled.

    One exception: psycopg refuses text containing NUL before anything is sent (a DataError
    without SQLSTATE, since PostgreSQL text cannot hold NUL); that is bad input from the caller,
    so it becomes a ValueError, as a NUL in JSON is a TypeError in ``to_jsonb``.
    """
    database = None
    if conn is not None and not conn.closed:
        database = f"database {conn.info.dbname!r}"
    mapped = error_from_psycopg(exc, database)
    if mapped is not None:
        raise mapped from exc
    if isinstance(exc, psycopg.DataError) and exc.sqlstate is None and "NUL" in str(exc):
        raise ValueError(f"text arguments cannot contain NUL characters: {exc}") from exc
    raise exc


# --- JSON and text parameters ------------------------------------------------------------------

# A JSON escape of NUL: "\u0000" preceded by an even number of backslashes (an odd number would
# mean the text holds a literal backslash followed by "u0000").
_NUL_ESCAPE: Final = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _already_json(text: str) -> str:
    """Return ``text`` unchanged: the dumps function of a Jsonb whose value is serialised."""
    return text


def to_jsonb(value: Any, what: str = "value") -> Jsonb:
    r"""Serialise ``value`` now and wrap it as a Jsonb parameter; TypeError if it cannot be stored.

    psycopg's Jsonb serialises lazily, during ``execute``, so a bad value in a batch would fail
    the whole statement with a database-level error. Serialising here fails early, names the
    value, and keeps one bad output from costing a round trip. Rejected besides what ``json``
    rejects: NaN/Infinity (not JSON) and NUL characters (jsonb cannot store ``\u0000``).
    A value that already is a ``Jsonb`` is returned unchanged.
    """
    if type(value) is Jsonb:
        return value
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc
    except RecursionError as exc:
        raise TypeError(f"{what} is nested too deeply to serialise as JSON") from exc
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise TypeError(f"{what} contains a NUL character, which PostgreSQL's jsonb cannot store")
    return Jsonb(text, dumps=_already_json)


def clean_text(text: str) -> str:
    """Make an error message storable: ``text`` columns cannot hold NUL characters."""
    return str(text).replace("\x00", "\\0")


# --- connections -------------------------------------------------------------------------------


def pool_conninfo(pool: ConnectionPool[Any] | AsyncConnectionPool[Any]) -> str:
    """Rebuild a connection string from a pool's ``conninfo`` and libpq keyword arguments."""
    conninfo: Any = pool.conninfo
    if callable(conninfo):
        conninfo = conninfo()
    kwargs: Any = pool.kwargs
    if callable(kwargs):
        kwargs = kwargs()
    libpq = {
        k: v
        for k, v in dict(kwargs or {}).items()
        if k not in _NON_LIBPQ_KWARGS and isinstance(v, str | int)
    }
    return make_conninfo(str(conninfo or ""), **libpq)


class Connector:
    """Lends connections to a database given as a string, a connection, a pool or DATABASE_URL.

    Does no I/O until a connection is asked for. Safe to share between threads.
    """

    def __init__(self, database: Database | None, *, prepare_threshold: int | None = 5) -> None:
        if database is not None and not isinstance(
            database, str | psycopg.Connection | ConnectionPool
        ):
            raise TypeError(
                "Client() takes a connection string, a psycopg.Connection or a"
                f" psycopg_pool.ConnectionPool, not {type(database).__name__}"
            )
        self.database = database
        # psycopg's own default is 5; None never prepares (pgbouncer < 1.21 in transaction mode).
        self.prepare_threshold = prepare_threshold
        self._own: psycopg.Connection[Any] | None = None
        # Re-entrant: a caller may run an operation while holding the connection.
        self._lock = threading.RLock()

    def close(self) -> None:
        """Close the connection this connector opened (if any); it reopens on the next call."""
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None

    @property
    def conninfo(self) -> str | None:
        """A connection string for the same database (None: no database and no DATABASE_URL)."""
        database = self.database
        if database is None:
            return os.environ.get("DATABASE_URL") or None
        if isinstance(database, str):
            return database
        if isinstance(database, ConnectionPool):
            return pool_conninfo(database)
        info = database.info
        password = info.password
        return make_conninfo(info.dsn, password=password) if password else info.dsn

    def require_conninfo(self) -> str:
        """Return ``conninfo`` or raise a clear error when there is none."""
        conninfo = self.conninfo
        if conninfo is None:
            raise WorkflowError(
                "no database given: pass a connection string, connection or pool to Client(),"
                " or set DATABASE_URL",
                hint="For example DATABASE_URL=postgresql://user@localhost:5432/app",
            )
        return conninfo

    def connect_dedicated(self) -> psycopg.Connection[Any]:
        """Open and return a NEW autocommit connection; the caller owns it and must close it."""
        return psycopg.connect(
            self.require_conninfo(), autocommit=True, prepare_threshold=self.prepare_threshold
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a connection for one call: the own one, the given one, or one from the pool."""
        database = self.database
        if isinstance(database, ConnectionPool):
            with database.connection() as conn:
                yield conn
        elif isinstance(database, psycopg.Connection):
            if database.autocommit:
                yield database
            else:
                with database.transaction():
                    yield database
        else:
            with self._lock:
                conn = self._own
                if conn is None or conn.closed:
                    conn = self._own = psycopg.connect(
                        self.require_conninfo(),
                        autocommit=True,
                        prepare_threshold=self.prepare_threshold,
                    )
                try:
                    yield conn
                finally:
                    if conn.broken or conn.closed:
                        # Lost connection: drop it so the next call reconnects.
                        self._own = None

    def call(self, op: Operation[T], conn: psycopg.Connection[Any] | None = None) -> T:
        """Execute ``op`` on ``conn`` (the worker's own connection) or on a lent connection."""
        if conn is not None:
            return execute(conn, op)
        with self.connection() as lent:
            return execute(lent, op)
