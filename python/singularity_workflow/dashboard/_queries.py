"""Every read of the web dashboard, in one place: run pages, counts, a step, queues, workers.

These are the dashboard's own reads that no ``workflow.*`` function answers: keyset paging of
runs (offset paging reads and throws away every row it skips, which a million-run table cannot
afford), bounded counts, one step's output and tasks, queue metrics; the live workers are the
client's ``list_workers``, the same read as the CLI's ``workers`` command.
They only read; the dashboard's actions go through the client's lifecycle methods, like the
CLI's. Each query is an ``_db.Operation`` (SQL, parameters, decoding), executed through
``Client.call``, so an async client could execute the same objects.

The run state (running / paused / completed / failed / cancelled) is derived from the stored
status and the pause/cancel timestamps by the SQL function ``workflow.run_state``, the one home
of that rule (``get_run_status`` and ``list_workflow_runs`` use it too; it is inlined, so it costs
no call). The filters of ``RUN_STATE_FILTERS`` are the same rule as predicates on the indexed
``status`` column, which a function in a WHERE clause could not use;
``tests/python/test_rules_match_sql.py`` checks that each filter selects exactly the runs
``run_state`` names that state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from psycopg import sql

from singularity_workflow._client import Client
from singularity_workflow._db import Operation, Rows
from singularity_workflow._types import WorkerInfo, WorkflowRun, run_uuid

__all__ = [
    "RUN_STATE_FILTERS",
    "channels",
    "queues",
    "run_counts",
    "runs",
    "step",
    "timeline",
    "workers",
]

#: Run states as the dashboard filters them; each a fixed fragment, so nothing a request sends
#: becomes SQL text.
RUN_STATE_FILTERS: Final[Mapping[str | None, str]] = {
    None: "true",
    "running": "r.status = 'started' and r.paused_at is null",
    "paused": "r.status = 'started' and r.paused_at is not null",
    "completed": "r.status = 'completed'",
    "failed": "r.status = 'failed' and r.cancelled_at is null",
    "cancelled": "r.status = 'failed' and r.cancelled_at is not null",
}
# The run state, as get_run_status's and list_workflow_runs' `state`.
_RUN_STATE: Final = "workflow.run_state(r.status, r.paused_at, r.cancelled_at)"
_RUNS: Final = (
    "select r.run_id, r.flow_slug, r.status, " + _RUN_STATE + ","
    " r.remaining_steps, r.error_message, r.retry_of, r.started_at, r.completed_at,"
    " r.failed_at, r.paused_at, r.cancelled_at"
    " from workflow.runs r where {where}"
    " order by r.started_at {direction}, r.run_id {direction} limit %s"
)
# Each status is scanned once, at most "cap" rows through its (status, started_at) index; the
# split of started runs into running/paused (and failed into failed/cancelled) is of those rows.
_COUNTS: Final = (
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
_STEP: Final = (
    "select s.step_slug, s.status, st.step_type, s.remaining_deps, s.remaining_tasks,"
    " s.initial_tasks, s.output, s.started_at, s.completed_at, s.failed_at, s.error_message,"
    " array(select d.dep_slug from workflow.deps d where d.version_id = s.version_id"
    "  and d.step_slug = s.step_slug order by d.dep_slug) as depends_on"
    " from workflow.step_states s"
    " join workflow.steps st on st.version_id = s.version_id and st.step_slug = s.step_slug"
    " where s.run_id = %s and s.step_slug = %s"
)
_STEP_KEYS: Final = (
    "step_slug", "status", "step_type", "remaining_deps", "remaining_tasks", "initial_tasks",
    "output", "started_at", "completed_at", "failed_at", "error_message", "depends_on",
)
_TASKS: Final = (
    "select t.task_index, t.status, t.attempts_count, t.max_attempts, t.worker_id, t.item,"
    " t.output, t.error_message, t.queued_at, t.started_at, t.completed_at, t.failed_at"
    " from workflow.tasks t where t.run_id = %s and t.step_slug = %s"
    " order by t.task_index offset %s limit %s"
)
_TASK_KEYS: Final = (
    "task_index", "status", "attempts_count", "max_attempts", "worker_id", "item", "output",
    "error_message", "queued_at", "started_at", "completed_at", "failed_at",
)
_QUEUES: Final = (
    "select to_jsonb(m) from pgmq.metrics_all() m"
    " where m.queue_name not in (select queue_name from workflow.channels)"
    " order by m.queue_name"
)
_CHANNELS: Final = "select channel, created_at from workflow.channels order by channel"
# A run's tasks in the order their steps started (then by step and index), for its timeline;
# through the (run_id, step_slug, task_index) key and the step_states primary key.
_TIMELINE: Final = (
    "select t.step_slug, t.task_index, t.status, t.attempts_count, t.queued_at, t.started_at,"
    " coalesce(t.completed_at, t.failed_at)"
    " from workflow.tasks t"
    " left join workflow.step_states s on s.run_id = t.run_id and s.step_slug = t.step_slug"
    " where t.run_id = %s"
    " order by s.started_at nulls last, t.step_slug, t.task_index limit %s"
)
_TIMELINE_RUN: Final = (
    "select r.started_at, coalesce(r.completed_at, r.failed_at),"
    " (select count(*) from workflow.tasks t where t.run_id = r.run_id)"
    " from workflow.runs r where r.run_id = %s"
)


def runs_op(
    state: str | None = None,
    flow_slug: str | None = None,
    *,
    limit: int = 50,
    before: tuple[datetime, UUID] | None = None,
    after: tuple[datetime, UUID] | None = None,
) -> Operation[list[WorkflowRun]]:
    """Build the page-of-runs query of :func:`runs`; ValueError for a bad state or limit."""
    if state not in RUN_STATE_FILTERS:
        known = sorted(s for s in RUN_STATE_FILTERS if s)
        raise ValueError(f"unknown run state {state!r}; use one of {known}")
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be between 1 and 1000, got {limit}")
    where = [sql.SQL(RUN_STATE_FILTERS[state])]
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
    query = sql.SQL(_RUNS).format(where=sql.SQL(" and ").join(where), direction=direction)
    backwards = after is not None and before is None

    def decode(rows: Rows) -> list[WorkflowRun]:
        page = [WorkflowRun(*row) for row in rows]
        return page[::-1] if backwards else page

    return Operation(query.as_string(), [*params, limit], decode)


def runs(
    client: Client,
    state: str | None = None,
    flow_slug: str | None = None,
    *,
    limit: int = 50,
    before: tuple[datetime, UUID] | None = None,
    after: tuple[datetime, UUID] | None = None,
) -> list[WorkflowRun]:
    """Return a page of runs, newest first, after a keyset cursor; see ``RUN_STATE_FILTERS``.

    ``before`` (started_at, run_id): the runs older than that one (the next page); ``after``:
    the ``limit`` runs just newer than it (the previous page), still returned newest first.
    Each page is an index range scan of ``(started_at)`` (or ``(status, started_at)`` /
    ``(flow_slug, started_at)``), so its cost does not grow with the page's depth.
    ValueError for an unknown ``state`` or a ``limit`` outside 1-1000.
    """
    return client.call(runs_op(state, flow_slug, limit=limit, before=before, after=after))


def run_counts(
    client: Client, flow_slug: str | None = None, *, cap: int = 10_000
) -> dict[str, int]:
    """Count runs per state (running, paused, completed, failed, cancelled), up to ``cap``.

    A count above ``cap`` means "more than cap": each stored status is read up to ``cap + 1``
    rows, so the cost is bounded however large the table grows ("failed" excludes cancelled
    runs). When more than ``cap`` runs are started, running shows as ``cap + 1`` and paused
    is the number among the rows read (likewise failed and cancelled).
    """

    def decode(rows: Rows) -> dict[str, int]:
        keys = ("running", "paused", "completed", "failed", "cancelled")
        counts = dict(zip(keys, rows[0], strict=True))
        for whole, part in (("running", "paused"), ("failed", "cancelled")):
            if counts[whole] + counts[part] > cap:
                counts[whole] = cap + 1
        return counts

    return client.call(Operation(_COUNTS, {"flow": flow_slug, "cap": cap + 1}, decode))


def step(
    client: Client, run_id: UUID | str, step_slug: str, *, limit: int = 100, offset: int = 0
) -> dict[str, Any] | None:
    """Return one step of a run with its output and a page of its tasks; None if unknown.

    Keys: the step_states columns (``status``, ``output``, ``error_message``, timings,
    ``initial_tasks``, ``remaining_tasks``), ``step_type``, ``depends_on`` and ``tasks``: up
    to ``limit`` task rows in index order from ``offset`` (index, status, attempts, worker,
    item, output, error, timings), read through the (run_id, step_slug, task_index) key.
    """
    rid = run_uuid(run_id)

    def one_step(rows: Rows) -> dict[str, Any] | None:
        return dict(zip(_STEP_KEYS, rows[0], strict=True)) if rows else None

    def task_rows(rows: Rows) -> list[dict[str, Any]]:
        return [dict(zip(_TASK_KEYS, row, strict=True)) for row in rows]

    # Both reads on one lent connection, as one call.
    with client.connection() as conn:
        found = client.call(Operation(_STEP, [rid, step_slug], one_step), conn=conn)
        if found is None:
            return None
        found["tasks"] = client.call(
            Operation(_TASKS, [rid, step_slug, offset, limit], task_rows), conn=conn
        )
    return found


def timeline(client: Client, run_id: UUID | str, *, limit: int = 100) -> dict[str, Any] | None:
    """Return a run's tasks for its timeline; None if the run is unknown.

    Keys: ``started_at`` and ``ended_at`` (None while it runs) of the run, ``tasks``: up to
    ``limit`` rows (step, index, status, attempts, queued_at, started_at, ended_at) in the
    order their steps started, and ``total``, the run's number of tasks.
    """
    rid = run_uuid(run_id)

    def run_row(rows: Rows) -> tuple[Any, ...] | None:
        return tuple(rows[0]) if rows else None

    def task_rows(rows: Rows) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in rows]

    with client.connection() as conn:
        head = client.call(Operation(_TIMELINE_RUN, [rid], run_row), conn=conn)
        if head is None:
            return None
        tasks = client.call(Operation(_TIMELINE, [rid, limit], task_rows), conn=conn)
    return {"started_at": head[0], "ended_at": head[1], "total": head[2], "tasks": tasks}


def queues(client: Client) -> list[dict[str, Any]]:
    """Return pgmq's metrics of each workflow queue (channel queues left out), by name.

    Keys: ``queue``, ``depth`` (messages claimable now), ``invisible`` (claimed, backing off
    or held by a pause), ``total`` (messages in the queue), ``oldest_age`` (seconds, None if
    empty) and ``sent`` (messages ever sent). Read from ``pgmq.metrics_all()`` as JSON so
    that pgmq versions with and without ``queue_visible_length`` both work.
    """

    def decode(rows: Rows) -> list[dict[str, Any]]:
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

    return client.call(Operation(_QUEUES, [], decode))


def workers(client: Client) -> list[WorkerInfo]:
    """Return the live registered workers, by id (``workflow.list_workers``, as the CLI's)."""
    return client.list_workers()


def channels(client: Client) -> list[dict[str, Any]]:
    """Return the messaging channels ever used (``channel``, ``created_at``), by name."""

    def decode(rows: Rows) -> list[dict[str, Any]]:
        return [{"channel": c, "created_at": t} for c, t in rows]

    return client.call(Operation(_CHANNELS, [], decode))
