"""Migration 0014 on a database of the previous release with work in flight.

It drops ``runs_finished_idx``, gives ``tasks`` and ``step_states`` fillfactor 50 and the
existing queues' pgmq tables the queue-like autovacuum settings. None of that may lose a row or
stop a run in flight: every row of every hot table and every queued message is still there after
the upgrade, the runs finish, and prune (which now walks the start-time index) removes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from singularity_workflow import install
from tests.python.test_upgrade import RELEASE_SQL, psql_file

TABLES = ("workflow.runs", "workflow.step_states", "workflow.tasks", "workflow.events",
          "pgmq.q_upg_storage")


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Row count of each hot table (and the queue's messages)."""
    out = {}
    for t in TABLES:
        row = conn.execute(f"select count(*) from {t}").fetchone()
        assert row is not None
        out[t] = int(row[0])
    return out


def test_the_upgrade_keeps_every_row_and_the_runs_in_flight_finish(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    psql_file(url, RELEASE_SQL)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select workflow.register_flow(%s)", [Jsonb({"slug": "upg_storage", "steps": [
            {"slug": "a", "execution": "distributed", "queue": "upg_storage"},
            {"slug": "b", "execution": "distributed", "queue": "upg_storage", "depends_on": ["a"]},
        ]})])
        for i in range(20):
            conn.execute("select workflow.start_flow('upg_storage', %s)", [Jsonb({"i": i})])
        # In flight: 5 root tasks claimed by an old worker, 5 completed (their b tasks queued),
        # 10 runs still queued.
        claimed = conn.execute("select task_id, attempt from workflow.claim_tasks("
                               "'upg_storage', qty => 10, worker_id => 'old')").fetchall()
        for task_id, attempt in claimed[:5]:
            conn.execute("select workflow.complete_task(%s, %s, %s)", [task_id, attempt, Jsonb(1)])
        held = claimed[5:]
        before = counts(conn)
        index = "select to_regclass('workflow.runs_finished_idx')"
        assert conn.execute(index).fetchone() != (None,)

    install(url)

    with psycopg.connect(url, autocommit=True) as conn:
        assert counts(conn) == before, "the upgrade lost or added rows"
        assert conn.execute(index).fetchone() == (None,)
        options: dict[str, str] = dict(conn.execute(
            "select relname, array_to_string(reloptions, ',') from pg_class"
            " where oid = any(array['pgmq.q_upg_storage', 'pgmq.a_upg_storage',"
            " 'workflow.tasks', 'workflow.step_states']::regclass[])").fetchall())
        assert "autovacuum_vacuum_cost_delay=0" in options["q_upg_storage"]
        assert "autovacuum_vacuum_scale_factor=0.02" in options["a_upg_storage"]
        assert "fillfactor=50" in options["tasks"] and "fillfactor=50" in options["step_states"]
        # The old worker reports after the upgrade, with its claim tokens; then everything drains.
        for task_id, attempt in held:
            assert conn.execute("select workflow.complete_task(%s, %s, %s)",
                                [task_id, attempt, Jsonb(1)]).fetchone() == (True,)
        for _ in range(20):
            tasks = conn.execute("select task_id, attempt from workflow.claim_tasks("
                                 "'upg_storage', qty => 50)").fetchall()
            if not tasks:
                break
            conn.execute("select count(*) from workflow.complete_tasks(%s, %s, %s::jsonb[])",
                         [[t[0] for t in tasks], [t[1] for t in tasks], ["1"] * len(tasks)])
        assert conn.execute("select array_agg(distinct status) from workflow.runs"
                            ).fetchone() == (["completed"],)
        pruned = conn.execute("select runs_deleted from workflow.prune("
                              "'0 seconds', now => clock_timestamp() + interval '1 second')"
                              ).fetchone()
        assert pruned == (20,)
