"""maintain() names the hot tables a VACUUM would help, and never while an old snapshot holds.

VACUUM cannot run inside a function, so ``workflow.maintain`` returns the list ("vacuum") and the
caller runs it. The statistics it reads (``pg_stat_user_tables``) are those of committed work
seen from other sessions, so this is a test over real connections rather than a pgTAP one.
Autovacuum is turned off on the table here so that a server with autovacuum on cannot vacuum it
between the steps (a recent vacuum rightly removes the table from the list).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from singularity_workflow import Client, Worker

FLOW = {"slug": "vac.one", "steps": [{"slug": "a", "execution": "distributed", "queue": "vac_q"}]}


def make_dead_tasks(conn: psycopg.Connection[Any], runs: int) -> None:
    """Start ``runs`` one-step runs and complete them: every task row is updated twice.

    Most of those updates are heap-only (fillfactor 50) and page pruning reclaims part of their
    dead versions as it goes, so only about 60% of the updates stay counted as dead rows: enough
    runs are made for the tasks table to clear maintain()'s 1,000-dead-row bar anyway.
    """
    conn.execute("select count(*) from workflow.start_flows('vac.one', %s::jsonb[])",
                 [["{}"] * runs])
    while True:
        tasks = conn.execute(
            "select task_id, attempt from workflow.claim_tasks('vac_q', 500)").fetchall()
        if not tasks:
            break
        conn.execute("select count(*) from workflow.complete_tasks(%s, %s, %s::jsonb[])",
                     [[t[0] for t in tasks], [t[1] for t in tasks], ["1"] * len(tasks)])
    # Make this session's counters visible to the others at once (they are flushed at most once
    # a second otherwise).
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select 1")


def advice(conn: psycopg.Connection[Any], later: str = "0 seconds") -> dict[str, Any]:
    """``workflow.maintain()`` as of now + ``later``."""
    row = conn.execute("select workflow.maintain(clock_timestamp() + %s::interval)",
                       [later]).fetchone()
    assert row is not None
    return dict(row[0])


def test_a_table_full_of_dead_rows_is_named_until_it_is_vacuumed(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow(FLOW)
    with psycopg.connect(db_url, autocommit=True) as work, \
            psycopg.connect(db_url, autocommit=True) as other:
        work.execute("alter table workflow.tasks set (autovacuum_enabled = false)")
        make_dead_tasks(work, 4000)
        result = advice(other)
        assert "workflow.tasks" in result["vacuum"], result
        assert result["oldest_snapshot_seconds"] < 30
        other.execute("vacuum workflow.tasks")
        other.execute("select pg_stat_force_next_flush()")
        other.execute("select 1")
        assert "workflow.tasks" not in advice(other)["vacuum"], "vacuumed just now: not named"


def test_no_vacuum_is_advised_while_an_old_snapshot_would_keep_the_dead_rows(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow(FLOW)
    with psycopg.connect(db_url, autocommit=True) as work, \
            psycopg.connect(db_url, autocommit=True) as other, \
            psycopg.connect(db_url) as holder:
        work.execute("alter table workflow.tasks set (autovacuum_enabled = false)")
        holder.execute("select txid_current()")  # idle in transaction from here on
        make_dead_tasks(work, 4000)
        # A minute from now the holder's snapshot is a minute old: vacuum could not remove the
        # dead rows made since it began, so nothing is advised and the age says why.
        held = advice(other, "1 minute")
        assert held["vacuum"] == [], held
        assert held["oldest_snapshot_seconds"] >= 60
        holder.rollback()
        released = advice(other, "1 minute")
        assert "workflow.tasks" in released["vacuum"], released


def test_a_worker_vacuums_what_maintain_names(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow(FLOW)
    with psycopg.connect(db_url, autocommit=True) as work:
        work.execute("alter table workflow.tasks set (autovacuum_enabled = false)")
        make_dead_tasks(work, 4000)
        before = work.execute("select vacuum_count from pg_stat_user_tables"
                              " where relid = 'workflow.tasks'::regclass").fetchone()
        assert before is not None
        worker = Worker(db_url, ["vac_q"], poll_interval=0.2)
        worker.run_in_thread()
        try:
            deadline = time.monotonic() + 30
            count = before[0]
            while count == before[0] and time.monotonic() < deadline:
                time.sleep(0.3)
                work.execute("select pg_stat_clear_snapshot()")
                row = work.execute("select vacuum_count from pg_stat_user_tables"
                                   " where relid = 'workflow.tasks'::regclass").fetchone()
                assert row is not None
                count = row[0]
        finally:
            worker.stop()
            worker.join(10)
        assert count > before[0], "the worker's maintain tick did not vacuum workflow.tasks"
