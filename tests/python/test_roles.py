"""Least-privilege roles (migration 0005) with real login roles and the Python API.

Login roles are created for the test (roles are cluster-wide, so with random names, dropped at
the end) and granted one of workflow_admin, workflow_worker, workflow_reader. The admin defines
flows (with ``role=workflow_admin`` set at connection, so what it creates belongs to the group
role and gets the default privileges), a Worker connected as the worker login completes a
workflow on a queue created after the install, and each role is refused what it must not do.
pgTAP (tests/sql/roles) covers the same ground function by function inside one transaction;
this test adds real sessions, the client's error mapping and a running Worker.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from singularity_workflow import Client, Worker, Workflow, step
from tests.fixtures import admin_url


class RoleFlow(Workflow):
    """A map and a join on a queue that does not exist before the admin registers the flow."""

    slug = "test_roles.flow"

    @step(map=True, execution="distributed", queue="roles_q", timeout=10)
    def double(self, item: int) -> int:
        """Double one element."""
        return item * 2

    @step(depends_on=["double"], execution="distributed", queue="roles_q", timeout=10)
    def total(self, input: dict[str, Any]) -> int:
        """Add them up."""
        return sum(input["double"])


@pytest.fixture(scope="module")
def logins(db_url: str) -> Iterator[dict[str, str]]:
    """Create admin, worker and reader login roles; yield their connection strings."""
    suffix = secrets.token_hex(3)
    names = {kind: f"sw_{kind}_{suffix}" for kind in ("admin", "worker", "reader")}
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        for kind, name in names.items():
            conn.execute(sql.SQL("create role {} login in role {}").format(
                sql.Identifier(name), sql.Identifier(f"workflow_{kind}")))
    urls = {kind: make_conninfo(db_url, user=name) for kind, name in names.items()}
    # The admin acts as the group role, so the queues it creates get the default privileges.
    urls["admin"] = make_conninfo(urls["admin"], options="-c role=workflow_admin")
    try:
        yield urls
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            for name in names.values():
                conn.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s",
                    [name])
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def test_install_created_the_three_group_roles(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select rolname, rolcanlogin, rolsuper, rolcreaterole from pg_roles"
        " where rolname like 'workflow\\_%' order by 1"
    ).fetchall()
    assert rows == [(f"workflow_{k}", False, False, False) for k in ("admin", "reader", "worker")]


def test_a_worker_role_runs_a_workflow_and_may_do_nothing_else(
    logins: dict[str, str], db_url: str
) -> None:
    admin = Client(logins["admin"])
    worker_client = Client(logins["worker"])
    reader = Client(logins["reader"])
    try:
        admin.register_flow(RoleFlow)
        # Flow control on the worker's queue, so that the worker's claims and completions go
        # through the limits' and the ordered queue's tables too.
        admin.set_concurrency_limit("queue", "roles_q", 2)
        admin.set_rate_limit("queue", "roles_q", 1000, 1)
        admin.set_queue_order("roles_q")
        run_id = admin.start_flow(RoleFlow.slug, [1, 2, 3])

        worker = Worker(worker_client, ["roles_q"], concurrency=4, poll_interval=0.2,
                        shutdown_grace=5, worker_id="role-worker")
        worker.run_in_thread()
        try:
            deadline = time.monotonic() + 20
            while (status := reader.get_run_status(run_id)).status == "in_progress":
                assert time.monotonic() < deadline, status
                time.sleep(0.05)
        finally:
            worker.stop()
            assert worker.join(10)
        assert status.status == "completed"
        assert admin.get_run_status(run_id).output == {"total": 12}
        assert worker.stats is not None and worker.stats.completed == 4
        assert [r.run_id for r in reader.list_workflow_runs()] == [run_id]

        other = admin.start_flow(RoleFlow.slug, [5])
        refused = {
            "define a flow": lambda: worker_client.register_flow(
                {"slug": "mine", "steps": [{"slug": "a", "execution": "distributed"}]}),
            "start a run": lambda: worker_client.start_flow(RoleFlow.slug, [1]),
            "cancel a run": lambda: worker_client.cancel_workflow_run(other),
            "pause a run": lambda: worker_client.pause_workflow_run(other),
            "delete a flow": lambda: _raw(logins["worker"], "delete from workflow.flows"),
            "read another schema": lambda: _raw(logins["worker"], "select * from app.secrets"),
            "prune": lambda: _raw(logins["worker"], "select * from workflow.prune('0 s')"),
        }
        refused_reader = {
            "claim": lambda: reader.claim_tasks("roles_q", 1),
            "cancel a run": lambda: reader.cancel_workflow_run(other),
            "send": lambda: reader.send_with_notify("news", {}),
        }
        _make_other_schema(db_url)
        for what, call in [*refused.items(), *(("reader: " + k, v)
                                                for k, v in refused_reader.items())]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                call()
                pytest.fail(f"allowed to {what}")
        assert reader.get_run_status(other).state == "running", "nothing was cancelled"
        assert reader.get_run_status(run_id).status == "completed", "nothing was pruned"
        assert admin.get_flow("test_roles.flow")["slug"] == "test_roles.flow"
        # The admin may do what the others may not.
        admin.cancel_workflow_run(other)
        assert _raw(logins["admin"], "select runs_deleted from workflow.prune('0 s')") == [(2,)]
    finally:
        for c in (admin, worker_client, reader):
            c.close()


def _make_other_schema(db_url: str) -> None:
    """Create a schema of the application's, which no engine role may read."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("create schema if not exists app")
        conn.execute("create table if not exists app.secrets (s text)")


def _raw(url: str, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on a new connection to ``url``; return its rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def test_a_worker_roles_claims_fire_due_ticks_and_start_at_runs(
    logins: dict[str, str], db_url: str
) -> None:
    """Ticks and start_at runs need no admin session: an idle worker's claims start them."""
    admin = Client(logins["admin"])
    worker_client = Client(logins["worker"])
    try:
        admin.register_flow(RoleFlow)
        admin.create_schedule("test_roles.tick", RoleFlow.slug, "@hourly", [7])
        at_run = admin.start_flow(RoleFlow.slug, [8],
                                  start_at=datetime.now(UTC) + timedelta(seconds=1))
        # Make the hourly tick due now (as the database owner: no engine role writes schedules).
        _raw(db_url, "update workflow.schedules set next_fire_at = clock_timestamp()"
                     " - interval '1 second' where schedule_name = 'test_roles.tick'")
        deadline = time.monotonic() + 15
        while True:
            # An idle claim loop on a queue with no tasks, as a Worker's poll does.
            worker_client.claim_tasks("roles_idle_q", 1)
            fired = _raw(db_url, "select count(*) from workflow.runs"
                                 " where schedule_name = 'test_roles.tick'")[0][0]
            status = _raw(db_url, "select status from workflow.runs where run_id = %s",
                          [at_run])[0][0]
            if fired and status == "started":
                break
            assert time.monotonic() < deadline, (fired, status)
            time.sleep(0.2)
        assert fired == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            worker_client.start_flow(RoleFlow.slug, [1])
    finally:
        for c in (admin, worker_client):
            c.close()
