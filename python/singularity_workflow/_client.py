"""The client: the one module that sends SQL to the engine, as typed calls of its functions.

Everything here is a thin wrapper over one ``workflow.*`` function of the SQL core: the state
machine is in the database, so the client holds no workflow state, only a way to reach a
database. Each method runs one statement (``get_run``: two reads) and maps errors raised with a
``WF`` SQLSTATE to the exceptions of ``_errors``; other psycopg errors propagate unchanged.

Where the connections come from (``Client(database)``):

* a connection string: the client opens one connection on first use and keeps it; calls from
  several threads take turns on it (pass a pool for real concurrency);
* a ``psycopg.Connection``: used as given. In autocommit mode every call is its own transaction;
  otherwise each call runs in ``conn.transaction()``, which commits at once on an idle connection
  and becomes a savepoint inside a transaction the caller opened (so ``start_flow`` can commit
  together with the caller's own writes);
* a ``psycopg_pool.ConnectionPool``: one connection is borrowed per call;
* nothing: ``DATABASE_URL``, read at first use, not in the constructor.

Constructing a client does no I/O. The worker's hot loop passes ``conn=`` (its own dedicated
connection) to the claim/complete/fail/extend calls, so no pool checkout or lock sits on that path.

Prepared statements: psycopg prepares a query server-side after it ran 5 times on a connection
(``prepare_threshold``), which suits the hot calls. Behind pgbouncer in transaction mode that only
works with pgbouncer >= 1.21 and ``max_prepared_statements`` set; otherwise create the connections
(or the pool, via ``kwargs``) with ``prepare_threshold=None``, or give a connection string with
``Client(url, prepare_threshold=None)``, which applies to every connection the client opens (its
own and the dedicated ones of workers and listeners).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NoReturn
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from singularity_workflow._errors import RunNotFound, WorkflowError, error_from_psycopg
from singularity_workflow._install import install as _install
from singularity_workflow._messages import ChannelMessage, WorkflowEvent

if TYPE_CHECKING:
    from singularity_workflow._lifecycle import OrderBy, RunStatus, WorkflowRun
    from singularity_workflow._workflow import WorkflowDef

__all__ = ["ClaimedTask", "Client", "Database", "default_client", "to_jsonb"]

#: What ``Client`` accepts as its database.
Database = str | psycopg.Connection[Any] | ConnectionPool[Any]

# Keyword arguments of a pool that configure the psycopg Connection object, not libpq: they must
# not leak into a connection string rebuilt from the pool's settings.
_NON_LIBPQ_KWARGS: Final = frozenset(
    {"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"}
)

# The hot-path statements. Named arguments keep them correct if a function gains a parameter;
# explicit array casts keep psycopg from guessing int2/int4/int8 from the Python values.
# input and item come back as text and are decoded here, task by task (see _load_task_json).
_CLAIM: Final = (
    "select task_id, attempt, run_id, flow_slug, step_slug, task_index, input::text, item::text,"
    " lease_expires_at from workflow.claim_tasks(queue_name => %s, qty => %s,"
    " worker_id => %s, resources => %s::text[], for_run_id => %s)"
)
_COMPLETE: Final = (
    "select task_id, accepted from workflow.complete_tasks("
    "task_ids => %s::bigint[], attempts => %s::integer[], outputs => %s::jsonb[])"
)
_FAIL: Final = (
    "select task_id, outcome from workflow.fail_tasks("
    "task_ids => %s::bigint[], attempts => %s::integer[], errors => %s::text[])"
)
_EXTEND: Final = (
    "select task_id, extended from workflow.extend_leases("
    "task_ids => %s::bigint[], attempts => %s::integer[], seconds => %s)"
)

_ADD_STEP: Final = (
    "select workflow.add_step(flow_slug => %s, step_slug => %s, depends_on => %s::text[],"
    " step_type => %s, map_over => %s, execution => %s, queue_name => %s,"
    " max_attempts => %s, base_delay => %s, timeout => %s, start_delay => %s,"
    " resources => %s::text[])"
)

_RUN_COLUMNS: Final = (
    "select r.run_id, r.flow_slug, r.status, r.input, r.output, r.error_message, r.failed_step,"
    " r.remaining_steps, r.started_at, r.completed_at, r.failed_at, r.deadline_at,"
    " r.paused_at, r.cancelled_at, r.retry_of"
    " from workflow.runs r where r.run_id = %s"
)
# Step outputs are left out: they can be large, and the run's output is in the run row.
_RUN_STEPS: Final = (
    "select s.step_slug, s.status, st.step_type, s.remaining_deps, s.remaining_tasks,"
    " s.initial_tasks, s.started_at, s.completed_at, s.failed_at, s.error_message"
    " from workflow.step_states s"
    " join workflow.steps st on st.flow_slug = s.flow_slug and st.step_slug = s.step_slug"
    " where s.run_id = %s order by st.step_index"
)
# Named arguments, in the order of list_workflow_runs' columns (WorkflowRun unpacks them).
_LIST_RUNS: Final = (
    "select run_id, flow_slug, status, state, remaining_steps, error_message, retry_of,"
    " started_at, completed_at, failed_at, paused_at, cancelled_at"
    " from workflow.list_workflow_runs(status_filter => %s, workflow_slug => %s,"
    " limit_rows => %s, offset_rows => %s, order_by => %s, order_dir => %s)"
)
_LIST_FLOWS: Final = (
    "select f.flow_slug as slug, count(s.step_slug)::integer as steps,"
    " f.timeout_seconds as timeout, f.created_at"
    " from workflow.flows f left join workflow.steps s on s.flow_slug = f.flow_slug"
    " group by f.flow_slug order by f.flow_slug"
)

# Dashboard queries (see the "dashboard" section of Client). Run states as the dashboard filters
# them; each is a fixed fragment, so nothing a request sends becomes SQL text.
_DASH_STATES: Final[dict[str | None, str]] = {
    None: "true",
    "running": "r.status = 'started' and r.paused_at is null",
    "paused": "r.status = 'started' and r.paused_at is not null",
    "completed": "r.status = 'completed'",
    "failed": "r.status = 'failed' and r.cancelled_at is null",
    "cancelled": "r.status = 'failed' and r.cancelled_at is not null",
}
_DASH_RUNS: Final = (
    "select r.run_id, r.flow_slug, r.status,"
    " case when r.cancelled_at is not null then 'cancelled'"
    " when r.status = 'started' and r.paused_at is not null then 'paused'"
    " when r.status = 'started' then 'running' else r.status end,"
    " r.remaining_steps, r.error_message, r.retry_of, r.started_at, r.completed_at,"
    " r.failed_at, r.paused_at, r.cancelled_at"
    " from workflow.runs r where {where}"
    " order by r.started_at {direction}, r.run_id {direction} limit %s"
)
# Each status is scanned once, at most "cap" rows through its (status, started_at) index; the
# split of started runs into running/paused (and failed into failed/cancelled) is of those rows.
_DASH_COUNTS: Final = (
    "select s.running, s.paused, (select count(*) from (select 1 from workflow.runs r"
    "  where r.status = 'completed' and (%(flow)s::text is null or r.flow_slug = %(flow)s)"
    "  limit %(cap)s) c), f.failed, f.cancelled"
    " from (select count(*) filter (where paused_at is null) as running,"
    "  count(*) filter (where paused_at is not null) as paused"
    "  from (select r.paused_at from workflow.runs r where r.status = 'started'"
    "  and (%(flow)s::text is null or r.flow_slug = %(flow)s) limit %(cap)s) x) s,"
    " (select count(*) filter (where cancelled_at is null) as failed,"
    "  count(*) filter (where cancelled_at is not null) as cancelled"
    "  from (select r.cancelled_at from workflow.runs r where r.status = 'failed'"
    "  and (%(flow)s::text is null or r.flow_slug = %(flow)s) limit %(cap)s) y) f"
)
_DASH_STEP: Final = (
    "select s.step_slug, s.status, st.step_type, s.remaining_deps, s.remaining_tasks,"
    " s.initial_tasks, s.output, s.started_at, s.completed_at, s.failed_at, s.error_message,"
    " array(select d.dep_slug from workflow.deps d where d.flow_slug = s.flow_slug"
    "  and d.step_slug = s.step_slug order by d.dep_slug) as depends_on"
    " from workflow.step_states s"
    " join workflow.steps st on st.flow_slug = s.flow_slug and st.step_slug = s.step_slug"
    " where s.run_id = %s and s.step_slug = %s"
)
_DASH_TASKS: Final = (
    "select t.task_index, t.status, t.attempts_count, t.max_attempts, t.worker_id, t.item,"
    " t.output, t.error_message, t.queued_at, t.started_at, t.completed_at, t.failed_at"
    " from workflow.tasks t where t.run_id = %s and t.step_slug = %s"
    " order by t.task_index offset %s limit %s"
)
_DASH_QUEUES: Final = (
    "select to_jsonb(m) from pgmq.metrics_all() m"
    " where m.queue_name not in (select queue_name from workflow.channels)"
    " order by m.queue_name"
)
_DASH_WORKERS: Final = (
    "select t.worker_id, max(t.started_at), count(*) filter (where t.status = 'started'),"
    " count(*) from (select worker_id, started_at, status from workflow.tasks"
    "  order by task_id desc limit %(scan)s) t"
    " where t.worker_id is not null"
    " and t.started_at > now() - make_interval(secs => %(window)s)"
    " group by t.worker_id order by max(t.started_at) desc"
)


class UndecodableJson:
    """Stands for a claimed task's input (or item) that Python cannot decode.

    PostgreSQL accepts JSON nested deeper than Python's json module can read (about 1,000
    levels). Decoding the whole claim at once would then raise in the worker's loop for every
    worker that claims the task; decoded task by task, only that task gets this marker, and
    the worker fails it with ``reason``.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"UndecodableJson({self.reason!r})"


def _load_task_json(text: str | None) -> Any:
    """Decode a claimed task's input or item; an UndecodableJson marker if it is too deep."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except RecursionError:
        return UndecodableJson(
            "its input is nested too deeply to decode in Python (over ~1,000 levels)"
        )


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """One task handed out by ``claim_tasks``; ``attempt`` is the token its report must carry.

    ``input`` is ``{"run": <run input>, "<dependency>": <its output>, ...}``; for a map task
    ``item`` is its element (and ``input`` leaves out the array mapped over), else None. Field
    order is the column order of ``claim_tasks``, so rows unpack straight into it.
    """

    task_id: int
    attempt: int
    run_id: UUID
    flow_slug: str
    step_slug: str
    task_index: int
    input: dict[str, Any]
    item: Any
    lease_expires_at: datetime


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
    """
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc
    except RecursionError as exc:
        raise TypeError(f"{what} is nested too deeply to serialise as JSON") from exc
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise TypeError(f"{what} contains a NUL character, which PostgreSQL's jsonb cannot store")
    return Jsonb(text, dumps=_already_json)


def _raise_mapped(exc: psycopg.Error) -> NoReturn:
    """Re-raise ``exc`` as its WorkflowError subclass when it has a WF SQLSTATE, else as is.

    One exception: psycopg refuses text containing NUL before anything is sent (a DataError
    without SQLSTATE, since PostgreSQL text cannot hold NUL); that is bad input from the caller,
    so it becomes a ValueError, as a NUL in JSON is a TypeError in ``to_jsonb``.
    """
    mapped = error_from_psycopg(exc)
    if mapped is not None:
        raise mapped from exc
    if isinstance(exc, psycopg.DataError) and exc.sqlstate is None and "NUL" in str(exc):
        raise ValueError(f"text arguments cannot contain NUL characters: {exc}") from exc
    raise exc


def _pool_conninfo(pool: ConnectionPool[Any]) -> str:
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


class Client:
    """Typed access to the engine's SQL functions over a connection string, connection or pool.

    Holds no workflow state; safe to share between threads. ``close()`` (or ``with Client(...)``)
    closes the connection the client opened itself; given connections and pools are the
    caller's to close.
    """

    def __init__(
        self, database: Database | None = None, *, prepare_threshold: int | None = 5
    ) -> None:
        if database is not None and not isinstance(
            database, str | psycopg.Connection | ConnectionPool
        ):
            raise TypeError(
                "Client() takes a connection string, a psycopg.Connection or a"
                f" psycopg_pool.ConnectionPool, not {type(database).__name__}"
            )
        self._database = database
        # psycopg's own default is 5; None never prepares (pgbouncer < 1.21 in transaction mode).
        self._prepare_threshold = prepare_threshold
        self._own: psycopg.Connection[Any] | None = None
        # Re-entrant: a method may call another while holding the connection.
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        kind = "DATABASE_URL" if self._database is None else type(self._database).__name__
        return f"<Client {kind}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection this client opened (if any); it reopens on the next call."""
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None

    # -- connections ---------------------------------------------------------------------------

    @property
    def conninfo(self) -> str | None:
        """A connection string for the same database, for dedicated or out-of-process connections.

        None when the client was given no database and ``DATABASE_URL`` is unset. For a given
        connection it is rebuilt from the connection's parameters, password included.
        """
        database = self._database
        if database is None:
            return os.environ.get("DATABASE_URL") or None
        if isinstance(database, str):
            return database
        if isinstance(database, ConnectionPool):
            return _pool_conninfo(database)
        info = database.info
        password = info.password
        return make_conninfo(info.dsn, password=password) if password else info.dsn

    def _require_conninfo(self) -> str:
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
        """Open and return a NEW autocommit connection (for LISTEN or a worker's loop).

        The caller owns it and must close it.
        """
        return psycopg.connect(
            self._require_conninfo(), autocommit=True, prepare_threshold=self._prepare_threshold
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a connection for one call: the client's own, the given one, or one from the pool.

        Statements run in it commit when the block ends (see the module docstring for a given
        connection that is not in autocommit mode).
        """
        database = self._database
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
                        self._require_conninfo(),
                        autocommit=True,
                        prepare_threshold=self._prepare_threshold,
                    )
                try:
                    yield conn
                finally:
                    if conn.broken or conn.closed:
                        # Lost connection: drop it so the next call reconnects.
                        self._own = None

    def _fetchall(
        self, query: str, params: Sequence[Any], conn: psycopg.Connection[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement (on ``conn`` or a lent connection) and return its rows."""
        try:
            if conn is not None:
                return conn.execute(query, params).fetchall()
            with self.connection() as lent:
                return lent.execute(query, params).fetchall()
        except psycopg.Error as exc:
            _raise_mapped(exc)

    def _fetchone(self, query: str, params: Sequence[Any]) -> Any:
        """Run a one-row, one-column statement and return that value."""
        rows = self._fetchall(query, params)
        return rows[0][0]

    # -- schema and definitions ----------------------------------------------------------------

    def install(self, *, dry_run: bool = False) -> list[str]:
        """Install or upgrade the schema; return the migrations applied (dry run: pending)."""
        database = self._database
        try:
            if isinstance(database, ConnectionPool):
                with database.connection() as conn:
                    return _install(conn, dry_run=dry_run)
            if isinstance(database, psycopg.Connection):
                return _install(database, dry_run=dry_run)
            return _install(self._require_conninfo(), dry_run=dry_run)
        except psycopg.Error as exc:
            _raise_mapped(exc)

    def register_flow(self, definition: Mapping[str, Any] | WorkflowDef | type | object) -> str:
        """Register a flow (idempotent for the same shape); return its slug.

        Takes the JSON definition of ``workflow.register_flow`` as a dict, or a workflow (a
        ``WorkflowDef``, a ``Workflow`` subclass or a class with ``__workflow_steps__``), which is
        validated in Python first and whose handlers are then known to workers in this process.
        Raises FlowShapeMismatch if the slug is registered with another shape.
        """
        if isinstance(definition, Mapping):
            body: Mapping[str, Any] = definition
        else:
            from singularity_workflow._workflow import registry, workflow_def

            wdef = workflow_def(definition)
            body = wdef.definition()
            registry[wdef.slug] = wdef
        return str(
            self._fetchone(
                "select workflow.register_flow(%s)", [to_jsonb(dict(body), "flow definition")]
            )
        )

    def get_flow(self, slug: str) -> dict[str, Any]:
        """Return a flow's definition as JSON (the form register_flow takes); FlowNotFound."""
        result: dict[str, Any] = self._fetchone("select workflow.get_flow(%s)", [slug])
        return result

    # --- flow building and task graphs ---------------------------------------------------------
    # FlowBuilder (dynamic flows) and the HTDAG orchestrator build and store definitions one call
    # at a time; the functions' headers in sql/functions say what each checks.

    def create_flow(self, name: str, timeout: int | None = None) -> str:
        """Create an empty flow (``workflow.create_flow``); return its slug."""
        slug: str = self._fetchone("select workflow.create_flow(%s, %s)", [name, timeout])
        return slug

    def add_step(
        self,
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
    ) -> dict[str, Any]:
        """Append a step to a flow without runs (``workflow.add_step``); return it normalised.

        Options left None take the server's defaults.
        """
        stored: dict[str, Any] = self._fetchone(
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
        )
        return stored

    def store_task_graph(self, goal: str, tasks: Any, hierarchy: Any = None) -> UUID:
        """Validate and store a decomposed goal's task graph; return its id."""
        graph_id: UUID = self._fetchone(
            "select workflow.store_task_graph(goal => %s, tasks => %s, hierarchy => %s)",
            [
                goal,
                to_jsonb(tasks, "tasks"),
                None if hierarchy is None else to_jsonb(hierarchy, "hierarchy"),
            ],
        )
        return graph_id

    def get_task_graph(self, graph_id: UUID) -> dict[str, Any]:
        """Return a stored task graph (``workflow.get_task_graph``); TaskGraphNotFound."""
        data: dict[str, Any] = self._fetchone("select workflow.get_task_graph(%s)", [graph_id])
        return data

    def approve_task_graph(self, graph_id: UUID) -> None:
        """Approve a stored task graph for execution (idempotent); TaskGraphNotFound."""
        self._fetchone("select workflow.approve_task_graph(%s)", [graph_id])

    def record_task_graph_run(
        self, graph_id: UUID, flow_slug: str, run_id: UUID | None = None
    ) -> None:
        """Record the flow (and run) a graph executes as; InvalidState if it is not approved."""
        self._fetchone(
            "select workflow.record_task_graph_run(%s, %s, %s)", [graph_id, flow_slug, run_id]
        )

    # --- end of flow building and task graphs --------------------------------------------------

    def list_flows(self) -> list[dict[str, Any]]:
        """Return every flow: ``slug``, ``steps`` (count), ``timeout``, ``created_at``."""
        try:
            with self.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                return cur.execute(_LIST_FLOWS).fetchall()
        except psycopg.Error as exc:
            _raise_mapped(exc)

    # -- runs ----------------------------------------------------------------------------------

    def start_flow(
        self,
        flow_slug: str,
        input: Any,
        *,
        run_id: UUID | None = None,
        timeout_seconds: int | None = None,
    ) -> UUID:
        """Start a run of ``flow_slug`` with ``input``; return its run id.

        ``input`` must be a JSON object (an array if the flow's root step maps over it). With
        ``run_id`` the call is idempotent: repeating it returns the same run.
        ``timeout_seconds`` sets the run's deadline (default: the flow's timeout, if any); past
        it ``enforce_deadlines`` cancels the run with the reason ``deadline exceeded``.
        """
        run: UUID = self._fetchone(
            "select workflow.start_flow(flow_slug => %s, input => %s, run_id => %s,"
            " timeout_seconds => %s)",
            [flow_slug, to_jsonb(input, "run input"), run_id, timeout_seconds],
        )
        return run

    def start_flows(
        self,
        flow_slug: str,
        inputs: Sequence[Any],
        *,
        run_ids: Sequence[UUID | None] | None = None,
        timeout_seconds: int | None = None,
    ) -> list[UUID]:
        """Start one run of ``flow_slug`` per input, in one call; return their ids in order.

        The batch form of :meth:`start_flow` (``workflow.start_flows``): one transaction and a
        few set-based statements for the whole batch, several times faster per run than separate
        calls. ``run_ids`` (same length, entries may be None) makes each run idempotent as in
        ``start_flow``. All or nothing: an invalid input fails the whole batch.
        """
        rows = self._fetchall(
            "select run_id from workflow.start_flows(flow_slug => %s, inputs => %s::jsonb[],"
            " run_ids => %s::uuid[], timeout_seconds => %s)",
            [
                flow_slug,
                [to_jsonb(value, "run input") for value in inputs],
                None if run_ids is None else list(run_ids),
                timeout_seconds,
            ],
        )
        return [row[0] for row in rows]

    def get_run(self, run_id: UUID | str) -> dict[str, Any]:
        """Return a run's row, its steps' states and its progress; RunNotFound if there is none.

        Keys: the ``workflow.runs`` columns, ``steps`` (step_slug, status, step_type, counters,
        timings, error_message; in definition order), ``total_steps``, ``completed_steps`` and
        ``percentage`` (of steps completed, 0-100, one decimal).
        """
        rid = run_id if isinstance(run_id, UUID) else UUID(str(run_id))
        try:
            with self.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                run = cur.execute(_RUN_COLUMNS, [rid]).fetchone()
                if run is None:
                    _raise_run_not_found(rid)
                steps = cur.execute(_RUN_STEPS, [rid]).fetchall()
        except psycopg.Error as exc:
            _raise_mapped(exc)
        total = len(steps)
        done = sum(1 for s in steps if s["status"] == "completed")
        run["steps"] = steps
        run["total_steps"] = total
        run["completed_steps"] = done
        run["percentage"] = round(100.0 * done / total, 1) if total else 0.0
        return run

    # --- lifecycle ----------------------------------------------------------------------------
    # Status, listing, cancel, pause, resume, retry and run deadlines: one workflow.* function
    # each (their headers in sql/functions say what they lock and guarantee). The typed results
    # live in _lifecycle, imported here at call time because _lifecycle imports this module.

    def get_run_status(self, run_id: UUID | str) -> RunStatus:
        """Return a run's progress, per-step states, timings and error; RunNotFound (WF011)."""
        from singularity_workflow._lifecycle import RunStatus

        data = self._fetchone("select workflow.get_run_status(%s)", [_run_uuid(run_id)])
        return RunStatus.from_json(data)

    def list_workflow_runs(
        self,
        status: str | None = None,
        workflow_slug: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        order_by: OrderBy = ("desc", "inserted_at"),
    ) -> list[WorkflowRun]:
        """List runs, filtered by ``status`` and flow, ordered and paged (newest first by default).

        ``status``: ``started`` (or ``in_progress``: running or paused), ``completed``,
        ``failed`` (cancelled runs included), ``paused``, ``cancelled``, or None for all.
        ``order_by``: ``(direction, column)`` with direction ``asc``/``desc`` and column
        ``inserted_at`` (the start time), ``started_at``, ``completed_at``, ``failed_at``,
        ``flow_slug`` or ``status``; a column name alone means descending. ``limit``: 1-1000.
        Anything else raises InvalidOption (WF010): names are whitelisted by the database and
        never become SQL text.
        """
        from singularity_workflow._lifecycle import WorkflowRun, order_by_args

        column, direction = order_by_args(order_by)
        rows = self._fetchall(_LIST_RUNS, [status, workflow_slug, limit, offset, column, direction])
        return [WorkflowRun(*row) for row in rows]

    def cancel_workflow_run(
        self,
        run_id: UUID | str,
        reason: str = "User requested cancellation",
        *,
        force: bool = False,
    ) -> None:
        """Cancel a run: it fails with ``reason`` and is flagged cancelled; its queued work goes.

        Tasks running on workers are refused at their next lease renewal or completion.
        InvalidState (WF013) if the run already ended, unless ``force`` (a completed run is then
        marked cancelled too); cancelling a cancelled run again changes nothing. RunNotFound.
        """
        self._fetchone(
            "select workflow.cancel_workflow_run(run_id => %s, reason => %s, force => %s)",
            [_run_uuid(run_id), _clean_text(reason), force],
        )

    def pause_workflow_run(self, run_id: UUID | str) -> None:
        """Pause a run: nothing new of it is claimed; running tasks finish and count.

        Idempotent. InvalidState (WF013) if the run already ended; RunNotFound.
        """
        self._fetchone("select workflow.pause_workflow_run(run_id => %s)", [_run_uuid(run_id)])

    def resume_workflow_run(self, run_id: UUID | str) -> None:
        """Resume a paused run: its held work becomes claimable and workers are woken.

        Idempotent (resuming a running run changes nothing). InvalidState (WF013) if the run
        already ended; RunNotFound.
        """
        self._fetchone("select workflow.resume_workflow_run(run_id => %s)", [_run_uuid(run_id)])

    def retry_failed_workflow(
        self,
        run_id: UUID | str,
        *,
        skip_completed: bool = True,
        reset_all: bool = False,
    ) -> UUID:
        """Start a new run of a failed run's flow with the same input; return the new run id.

        The new run's ``retry_of`` is ``run_id``. With ``skip_completed`` (and not
        ``reset_all``) the steps that completed in the failed run are carried over with their
        outputs: only the failed step, its descendants and unfinished steps run again.
        InvalidState (WF013) if the run has not failed; RunNotFound.
        """
        new_run: UUID = self._fetchone(
            "select workflow.retry_failed_workflow(run_id => %s, skip_completed => %s,"
            " reset_all => %s)",
            [_run_uuid(run_id), skip_completed, reset_all],
        )
        return new_run

    def enforce_deadlines(self, *, max_runs: int = 100) -> int:
        """Cancel up to ``max_runs`` runs past their deadline (reason ``deadline exceeded``).

        Returns how many were cancelled. Safe to call from many processes at once; workers
        call it on their polling cycle.
        """
        count: int = self._fetchone("select workflow.enforce_deadlines(max_runs => %s)", [max_runs])
        return count

    # --- end of lifecycle ---------------------------------------------------------------------

    def maintain(self) -> dict[str, Any]:
        """Run the engine's housekeeping once: cancel overdue runs, refresh stale statistics.

        Workers call it on every polling tick (see ``workflow.maintain``); returns
        ``{"cancelled_runs": n, "analyzed": [tables]}``.
        """
        result: dict[str, Any] = self._fetchone("select workflow.maintain()", [])
        return result

    # -- the worker's hot path: one statement each, no per-row queries --------------------------

    def claim_tasks(
        self,
        queue: str,
        qty: int = 10,
        *,
        worker_id: str | None = None,
        resources: Sequence[str] | None = None,
        for_run_id: UUID | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> list[ClaimedTask]:
        """Claim up to ``qty`` tasks from ``queue``; each carries its attempt token and lease.

        ``resources`` None claims regardless of the steps' resource requirements; a list claims
        only steps whose requirements it covers. Local steps: ``queue="local"`` and
        ``for_run_id`` (the run this process executes).
        """
        rows = self._fetchall(
            _CLAIM,
            [queue, qty, worker_id, None if resources is None else list(resources), for_run_id],
            conn,
        )
        return [
            ClaimedTask(t, a, r, f, s, i, _load_task_json(inp), _load_task_json(item), lease)
            for t, a, r, f, s, i, inp, item, lease in rows
        ]

    def complete_tasks(
        self,
        items: Sequence[tuple[int, int, Any]],
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dict[int, bool]:
        """Report ``(task_id, attempt, output)`` results; return task_id -> accepted.

        False means the report was stale (lease lost, duplicate, run already ended) and was
        ignored. Outputs that cannot be stored as JSON raise TypeError before any SQL is sent.
        An output given as a ``Jsonb`` (e.g. made by ``to_jsonb``) is sent unchanged.
        """
        if not items:
            return {}
        ids = [i[0] for i in items]
        attempts = [i[1] for i in items]
        # An output that is already a Jsonb (the worker serialises each output once, in the
        # handler's thread, to check it) is sent as it is rather than serialised a second time.
        outputs = [
            i[2] if type(i[2]) is Jsonb else to_jsonb(i[2], f"output of task {i[0]}")
            for i in items
        ]
        rows = self._fetchall(_COMPLETE, [ids, attempts, outputs], conn)
        return {task_id: accepted for task_id, accepted in rows}

    def fail_tasks(
        self,
        items: Sequence[tuple[int, int, str]],
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dict[int, str]:
        """Report ``(task_id, attempt, error)`` failures; return task_id -> outcome.

        Outcomes: ``"retry"`` (queued again after a backoff), ``"failed"`` (last attempt: the
        step and run failed), ``"stale"`` (the token did not match; nothing changed).
        """
        if not items:
            return {}
        ids = [i[0] for i in items]
        attempts = [i[1] for i in items]
        errors = [_clean_text(i[2]) for i in items]
        rows = self._fetchall(_FAIL, [ids, attempts, errors], conn)
        return {task_id: outcome for task_id, outcome in rows}

    def extend_leases(
        self,
        items: Sequence[tuple[int, int]],
        seconds: int,
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dict[int, bool]:
        """Push the leases of ``(task_id, attempt)`` to now + ``seconds``; task_id -> extended.

        False means: stop working on that task, its result would be ignored.
        """
        if not items:
            return {}
        ids = [i[0] for i in items]
        attempts = [i[1] for i in items]
        rows = self._fetchall(_EXTEND, [ids, attempts, seconds], conn)
        return {task_id: extended for task_id, extended in rows}

    # --- messaging ----------------------------------------------------------------------------
    # Channels (persisted messages announced by NOTIFY), fire-and-forget NOTIFY and the engine's
    # event log. Listening is in _listen: LISTEN is session state, so it needs a dedicated
    # connection, never a lent one. The listener passes its own connection as ``conn=``.

    def send_with_notify(
        self, channel: str, message: Any, *, conn: psycopg.Connection[Any] | None = None
    ) -> int:
        """Persist ``message`` (any JSON value) on ``channel`` and notify listeners; return its id.

        The message and its NOTIFY (payload: the id) commit together. Ids increase per channel.
        InvalidName (WF001) for a bad or reserved channel name; TypeError (before any SQL) for a
        value JSON cannot hold.
        """
        message_id: int = self._fetchall(
            "select workflow.send_with_notify(%s, %s)",
            [channel, to_jsonb(message, "message")],
            conn,
        )[0][0]
        return message_id

    def notify_only(self, channel: str, payload: str = "") -> None:
        """NOTIFY ``channel`` with ``payload`` without storing anything (missed if not listening).

        PayloadTooLarge (WF014) for a payload of 8,000 bytes or more; InvalidName (WF001).
        """
        self._fetchall("select workflow.notify_only(%s, %s)", [channel, payload])

    def read_channel(
        self,
        channel: str,
        after_id: int = 0,
        limit: int = 100,
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> list[ChannelMessage]:
        """Return up to ``limit`` (1-1000) messages of ``channel`` with ids above ``after_id``.

        In id order, acknowledged ones included (flagged); empty for a channel never used.
        """
        rows = self._fetchall(
            "select message_id, message, enqueued_at, acknowledged from workflow.read_channel("
            "channel => %s, after_id => %s, max_messages => %s)",
            [channel, after_id, limit],
            conn,
        )
        return [ChannelMessage(channel, *row) for row in rows]

    def ack_message(self, channel: str, message_id: int) -> bool:
        """Acknowledge (archive) a message; False if it was not live (unknown or already acked)."""
        acked: bool = self._fetchall("select workflow.ack_message(%s, %s)", [channel, message_id])[
            0
        ][0]
        return acked

    def read_events(
        self,
        after_id: int = 0,
        run_id: UUID | str | None = None,
        limit: int = 100,
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> list[WorkflowEvent]:
        """Return up to ``limit`` (1-10000) engine events with ids above ``after_id``, in order.

        ``run_id`` restricts them to one run. See ``WorkflowEvent`` for the event names.
        """
        rid = None if run_id is None else _run_uuid(run_id)
        rows = self._fetchall(
            "select event_id, created_at, run_id, flow_slug, step_slug, event"
            " from workflow.read_events(after_id => %s, for_run_id => %s, max_events => %s)",
            [after_id, rid, limit],
            conn,
        )
        return [WorkflowEvent(*row) for row in rows]

    def last_message_id(self, channel: str, *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Return the highest committed message id of ``channel`` (0 if none, or never used).

        A listener starts from here when told not to replay: later ids are new to it
        (``workflow.channel_last_id``: the channel's queue and archive).
        """
        rows = self._fetchall("select workflow.channel_last_id(%s)", [channel], conn)
        return int(rows[0][0])

    def last_event_id(self, *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Return the highest committed event id (0 if none): where a live-only listener starts."""
        last = self._fetchall("select coalesce(max(event_id), 0) from workflow.events", [], conn)[
            0
        ][0]
        return int(last)

    # --- end of messaging ---------------------------------------------------------------------

    # --- dashboard ------------------------------------------------------------------------------
    # Read-only queries of the web dashboard (singularity_workflow.dashboard) that no workflow.*
    # function answers: keyset paging of runs (offset paging reads and throws away every row it
    # skips, which a million-run table cannot afford), bounded counts, one step's output and
    # tasks, queue metrics and recently seen workers. They only read; the dashboard's actions go
    # through the lifecycle methods above, like the CLI's.

    def dashboard_runs(
        self,
        state: str | None = None,
        flow_slug: str | None = None,
        *,
        limit: int = 50,
        before: tuple[datetime, UUID] | None = None,
        after: tuple[datetime, UUID] | None = None,
    ) -> list[WorkflowRun]:
        """Return a page of runs, newest first, after a keyset cursor; see ``_DASH_STATES``.

        ``before`` (started_at, run_id): the runs older than that one (the next page); ``after``:
        the ``limit`` runs just newer than it (the previous page), still returned newest first.
        Each page is an index range scan of ``(started_at)`` (or ``(status, started_at)`` /
        ``(flow_slug, started_at)``), so its cost does not grow with the page's depth.
        ValueError for an unknown ``state`` or a ``limit`` outside 1-1000.
        """
        from singularity_workflow._lifecycle import WorkflowRun

        if state not in _DASH_STATES:
            known = sorted(s for s in _DASH_STATES if s)
            raise ValueError(f"unknown run state {state!r}; use one of {known}")
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be between 1 and 1000, got {limit}")
        where = [sql.SQL(_DASH_STATES[state])]
        params: list[Any] = []
        if flow_slug is not None:
            where.append(sql.SQL("r.flow_slug = %s"))
            params.append(flow_slug)
        direction = sql.SQL("desc")
        if before is not None:
            where.append(sql.SQL("(r.started_at, r.run_id) < (%s, %s)"))
            params += list(before)
        elif after is not None:
            where.append(sql.SQL("(r.started_at, r.run_id) > (%s, %s)"))
            params += list(after)
            direction = sql.SQL("asc")
        query = sql.SQL(_DASH_RUNS).format(
            where=sql.SQL(" and ").join(where), direction=direction
        )
        rows = self._fetchall(query.as_string(), [*params, limit])
        runs = [WorkflowRun(*row) for row in rows]
        return runs[::-1] if after is not None and before is None else runs

    def dashboard_run_counts(
        self, flow_slug: str | None = None, *, cap: int = 10_000
    ) -> dict[str, int]:
        """Count runs per state (running, paused, completed, failed, cancelled), up to ``cap``.

        A count above ``cap`` means "more than cap": each stored status is read up to ``cap + 1``
        rows, so the cost is bounded however large the table grows ("failed" excludes cancelled
        runs). When more than ``cap`` runs are started, running shows as ``cap + 1`` and paused
        is the number among the rows read (likewise failed and cancelled).
        """
        row = self._dash_fetch(_DASH_COUNTS, {"flow": flow_slug, "cap": cap + 1})[0]
        counts = dict(zip(("running", "paused", "completed", "failed", "cancelled"), row,
                          strict=True))
        for whole, part in (("running", "paused"), ("failed", "cancelled")):
            if counts[whole] + counts[part] > cap:
                counts[whole] = cap + 1
        return counts

    def dashboard_step(
        self, run_id: UUID | str, step_slug: str, *, limit: int = 100, offset: int = 0
    ) -> dict[str, Any] | None:
        """Return one step of a run with its output and a page of its tasks; None if unknown.

        Keys: the step_states columns (``status``, ``output``, ``error_message``, timings,
        ``initial_tasks``, ``remaining_tasks``), ``step_type``, ``depends_on`` and ``tasks``: up
        to ``limit`` task rows in index order from ``offset`` (index, status, attempts, worker,
        item, output, error, timings), read through the (run_id, step_slug, task_index) key.
        """
        rid = _run_uuid(run_id)
        try:
            with self.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                step = cur.execute(_DASH_STEP, [rid, step_slug]).fetchone()
                if step is None:
                    return None
                step["tasks"] = cur.execute(
                    _DASH_TASKS, [rid, step_slug, offset, limit]
                ).fetchall()
        except psycopg.Error as exc:
            _raise_mapped(exc)
        return step

    def dashboard_queues(self) -> list[dict[str, Any]]:
        """Return pgmq's metrics of each workflow queue (channel queues left out), by name.

        Keys: ``queue``, ``depth`` (messages claimable now), ``invisible`` (claimed, backing off
        or held by a pause), ``total`` (messages in the queue), ``oldest_age`` (seconds, None if
        empty) and ``sent`` (messages ever sent). Read from ``pgmq.metrics_all()`` as JSON so
        that pgmq versions with and without ``queue_visible_length`` both work.
        """
        rows = self._fetchall(_DASH_QUEUES, [])
        out = []
        for (m,) in rows:
            total = int(m.get("queue_length") or 0)
            visible = m.get("queue_visible_length")
            depth = total if visible is None else int(visible)
            out.append({
                "queue": m["queue_name"], "depth": depth, "invisible": total - depth,
                "total": total, "oldest_age": m.get("oldest_msg_age_sec"),
                "sent": m.get("total_messages"),
            })
        return out

    def dashboard_workers(
        self, *, window_seconds: int = 300, scan: int = 20_000
    ) -> list[dict[str, Any]]:
        """Return the workers that claimed a task in the last ``window_seconds``, latest first.

        Keys: ``worker_id``, ``last_claim``, ``running`` (tasks it holds now), ``claimed``
        (tasks it claimed in the window). Only the newest ``scan`` tasks are read (a backward
        scan of the task key), so the cost is bounded on a large table; a worker that only
        retries old tasks can be missed.
        """
        rows = self._dash_fetch(_DASH_WORKERS, {"window": window_seconds, "scan": scan})
        keys = ("worker_id", "last_claim", "running", "claimed")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def _dash_fetch(self, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement with named parameters and return its rows (WF errors mapped)."""
        try:
            with self.connection() as conn:
                return conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            _raise_mapped(exc)

    def dashboard_channels(self) -> list[dict[str, Any]]:
        """Return the messaging channels ever used (``channel``, ``created_at``), by name."""
        rows = self._fetchall(
            "select channel, created_at from workflow.channels order by channel", []
        )
        return [{"channel": c, "created_at": t} for c, t in rows]

    # --- end of dashboard -----------------------------------------------------------------------


def _run_uuid(run_id: UUID | str) -> UUID:
    """Accept a run id as a UUID or its text; ValueError for text that is not a UUID."""
    return run_id if isinstance(run_id, UUID) else UUID(str(run_id))


def _raise_run_not_found(run_id: UUID) -> NoReturn:
    """Raise RunNotFound (WF011) for ``run_id``, worded like the server's errors."""
    raise RunNotFound(f"run {run_id} does not exist")


def _clean_text(text: str) -> str:
    """Make an error message storable: ``text`` columns cannot hold NUL characters."""
    return str(text).replace("\x00", "\\0")


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """Return the process-wide client over ``DATABASE_URL`` used by module-level functions."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default
