"""Flow versions across a deploy: runs stay on the version they started on, workers serve theirs.

Workers here are the Worker class in threads. The Worker does not yet register its definitions'
version hashes itself, so each test worker's row is registered in SQL first
(``workflow.register_worker`` with per-version handlers, ``{"flow": {"<shape hash>": [steps]}}``)
and the Worker claims under that worker id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from singularity_workflow import (
    Client,
    Worker,
    Workflow,
    execute,
    register_handlers,
    step,
    workflow_def,
)

FLOW = "tests.deploy"
V1 = {"slug": FLOW, "steps": [
    {"slug": "a", "execution": "distributed", "queue": "deploy"},
    {"slug": "old", "depends_on": ["a"], "execution": "distributed", "queue": "deploy"},
]}
# v2: "old" removed, "new" added.
V2 = {"slug": FLOW, "steps": [
    {"slug": "a", "execution": "distributed", "queue": "deploy"},
    {"slug": "new", "depends_on": ["a"], "execution": "distributed", "queue": "deploy"},
]}


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


def _slow(name: str) -> Any:
    def handler(input: dict[str, Any]) -> dict[str, str]:
        time.sleep(0.002)  # long enough that the deploy lands while v1 runs are in flight
        return {"step": name}
    return handler


def _register_version(conn: psycopg.Connection[Any], definition: dict[str, Any]) -> tuple[int, str]:
    row = conn.execute(
        "select version, shape_hash from workflow.register_flow_version(%s)", [Jsonb(definition)]
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute(
        "select status, count(*) from workflow.runs where flow_slug = %s group by status", [FLOW]
    ).fetchall()
    return {str(s): int(n) for s, n in rows}


def test_a_deploy_mid_flight_finishes_v1_runs_on_v1_and_starts_new_runs_on_v2(
    db_url: str, client: Client
) -> None:
    register_handlers(FLOW, {name: _slow(name) for name in ("a", "old", "new")})
    with psycopg.connect(db_url, autocommit=True) as conn:
        v1, h1 = _register_version(conn, V1)
        # Both workers share this process's handlers; each says which version it serves, as
        # processes of two releases do by the shape of their own definitions.
        old = Worker(client, ["deploy"], worker_id="deploy-old", concurrency=4, poll_interval=0.2,
                     shutdown_grace=5, handlers={FLOW: {h1: ["a", "old"]}})
        old.run_in_thread()
        try:
            first = client.start_flows(FLOW, [{"i": i} for i in range(200)])
            # Deploy while v1 runs are in flight: some finished, most not.
            deadline = time.monotonic() + 60
            while _counts(conn).get("completed", 0) < 10:
                assert time.monotonic() < deadline, "the old worker made no progress"
                time.sleep(0.05)
            assert _counts(conn).get("started", 0) > 0, "every v1 run finished before the deploy"
            v2, h2 = _register_version(conn, V2)
            assert v2 == v1 + 1
            new = Worker(client, ["deploy"], worker_id="deploy-new", concurrency=4,
                         poll_interval=0.2, shutdown_grace=5, handlers={FLOW: {h2: ["a", "new"]}})
            new.run_in_thread()
            try:
                second = client.start_flows(FLOW, [{"i": i} for i in range(200, 400)])
                deadline = time.monotonic() + 120
                while _counts(conn).get("completed", 0) < 400:
                    assert _counts(conn).get("failed", 0) == 0, "a run failed"
                    assert time.monotonic() < deadline, f"runs left: {_counts(conn)}"
                    time.sleep(0.1)
            finally:
                new.stop()
                assert new.join(10)
        finally:
            old.stop()
            assert old.join(10)

        def shapes(run_ids: list[Any]) -> set[tuple[int, str, str]]:
            rows = conn.execute(
                "select v.version, array_to_string(array_agg(ss.step_slug || ':' || ss.status"
                " order by ss.step_slug), ','), string_agg(distinct t.worker_id, ',')"
                " from workflow.runs r join workflow.flow_versions v on v.version_id = r.version_id"
                " join workflow.step_states ss on ss.run_id = r.run_id"
                " join workflow.tasks t on t.run_id = r.run_id and t.step_slug = ss.step_slug"
                " where r.run_id = any(%s) group by r.run_id, v.version",
                [list(run_ids)],
            ).fetchall()
            assert len(rows) == len(run_ids)
            return {(int(v), str(s), str(w)) for v, s, w in rows}

        assert shapes(first) == {(v1, "a:completed,old:completed", "deploy-old")}
        assert shapes(second) == {(v2, "a:completed,new:completed", "deploy-new")}
        assert _counts(conn) == {"completed": 400}


def test_two_concurrent_registrations_of_different_shapes_both_become_versions(db_url: str) -> None:
    flow = "tests.concurrent_deploy"
    base = {"slug": flow, "steps": [{"slug": "a"}]}
    with psycopg.connect(db_url, autocommit=True) as setup:
        setup.execute("select workflow.register_flow(%s)", [Jsonb(base)])
    first = psycopg.connect(db_url)
    second = psycopg.connect(db_url)
    try:
        # The first registration holds its transaction open with its new version made; the
        # second, of another shape, must wait for it rather than fail, then number its own.
        first.execute("select workflow.register_flow(%s)",
                      [Jsonb({"slug": flow, "steps": [{"slug": "a"}, {"slug": "b"}]})])
        done: list[Any] = []

        def register_second() -> None:
            row = second.execute(
                "select version from workflow.register_flow_version(%s)",
                [Jsonb({"slug": flow, "steps": [{"slug": "a"}, {"slug": "c"}]})],
            ).fetchone()
            second.commit()
            done.append(row)

        t = threading.Thread(target=register_second)
        t.start()
        time.sleep(0.5)
        assert not done, "the second registration did not wait for the first"
        first.commit()
        t.join(10)
        assert done == [(3,)]
    finally:
        first.close()
        second.close()
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "select version, is_current from workflow.list_flow_versions(%s) order by version",
            [flow],
        ).fetchall()
        assert rows == [(1, False), (2, False), (3, True)]
        steps = conn.execute(
            "select workflow.get_flow(%s) -> 'steps' -> 1 ->> 'slug'", [flow]
        ).fetchone()
        assert steps == ("c",)


def test_execute_runs_on_its_own_definitions_version_while_a_newer_one_is_current(
    client: Client,
) -> None:
    class Old(Workflow):
        slug = "tests.execute_old"

        @step
        def a(self, input: dict[str, Any]) -> str:
            return "old a"

    first = execute(Old, {}, client=client, timeout=20)
    # Another process deploys a new shape of the same slug.
    newer = client.register_flow_version(
        {"slug": "tests.execute_old", "steps": [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]}
    )
    assert newer.created and newer.version == 2
    second = execute(Old, {}, client=client, timeout=20)
    assert second.output == {"a": "old a"}
    assert client.get_run_status(first.run_id).version == 1
    assert client.get_run_status(second.run_id).version == 1


class _Shipped(Workflow):
    """A workflow this process's code defines: the worker serves exactly its shape."""

    slug = "tests.versions_shipped"

    @step(execution="distributed", queue="ship_q")
    def pack(self, input: dict[str, Any]) -> int:
        return 1


def test_a_worker_advertises_the_shape_hash_of_the_definitions_it_holds(
    db_url: str, client: Client
) -> None:
    client.register_flow(_Shipped)
    expected = client.flow_shape_hash(workflow_def(_Shipped).definition())
    worker = Worker(client, ["ship_q"], poll_interval=0.2, shutdown_grace=1)
    worker.run_in_thread()
    try:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "select handlers from workflow.workers where worker_id = %s", [worker.worker_id]
            ).fetchone()
        assert row is not None
        assert row[0][_Shipped.slug] == {expected: ["pack"]}
    finally:
        worker.stop()
        worker.join(10)
