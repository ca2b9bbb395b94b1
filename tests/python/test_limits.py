"""Concurrency and rate limits under real concurrency: exact across connections, no slot lost.

pgTAP proves each rule inside one transaction; this proves the one thing it cannot: that two
claims on different connections never both take the last slot of a key. Eight drivers (threads,
each its own connection and backend) claim from one queue whose flow has a per-key limit of 2 over
50 keys, complete what they claim after a short random pause, and after every claim sample the
number of started tasks per key from the tables. A killer thread terminates random drivers'
backends meanwhile (pg_terminate_backend); their claimed tasks stay started until their 1 s lease
expires and are claimed again, so a killed worker must neither leak a slot (the run would never
finish) nor let its key exceed 2. A rate limit (20 starts per second, four connections) is checked
the same way: no window of one second, starting at any start, holds more than 20 starts. Both
fail when the claim's per-key lock is taken out. The small tests at the end cover the client,
the CLI and the errors.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, ClassVar

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.types.json import Jsonb

from singularity_workflow import (
    Client,
    DefinitionError,
    FlowBuilder,
    InvalidLimit,
    InvalidOption,
    Workflow,
    step,
    workflow_def,
)
from singularity_workflow.cli import main

DRIVERS = 8
KEYS = 50
RUNS_PER_KEY = 10
LIMIT = 2

_DONE = "select count(*) from workflow.runs where flow_slug = 'limited' and status = 'completed'"

_PER_KEY = """
    select coalesce(max(n), 0) from (
        select r.input ->> 'tenant' as k, count(*) as n
        from workflow.tasks t join workflow.runs r on r.run_id = t.run_id
        where t.queue_name = 'limited' and t.status = 'started'
        group by 1
    ) as x
"""


def _driver(url: str, stop: threading.Event, samples: list[int], backends: list[int],
            errors: list[BaseException], claimed: list[int]) -> None:
    """Claim, sample, complete, until stopped; reconnect when the backend is killed."""
    rng = random.Random()
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                backends.append(conn.info.backend_pid)
                while not stop.is_set():
                    rows = conn.execute(
                        "select task_id, attempt from workflow.claim_tasks('limited', 10)"
                    ).fetchall()
                    row = conn.execute(_PER_KEY).fetchone()
                    assert row is not None
                    samples.append(int(row[0]))
                    claimed.append(len(rows))
                    if not rows:
                        time.sleep(0.02)
                        continue
                    time.sleep(rng.uniform(0, 0.03))
                    for task_id, attempt in rows:
                        conn.execute(
                            "select workflow.complete_task(%s, %s, '{}')", [task_id, attempt]
                        )
        except psycopg.OperationalError:
            continue  # killed: a new connection, as a restarted worker would
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
            return


def test_a_per_key_limit_holds_across_eight_connections_with_random_kills(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "select workflow.register_flow(%s)",
            [Jsonb({"slug": "limited", "steps": [
                {"slug": "only", "execution": "distributed", "queue": "limited", "timeout": 1,
                 "max_attempts": 1000}]})],
        )
        conn.execute(
            "select workflow.set_concurrency_limit('key', 'limited', %s, 'tenant')", [LIMIT]
        )
        inputs = [
            Jsonb({"tenant": f"t{k}", "n": n}) for n in range(RUNS_PER_KEY) for k in range(KEYS)
        ]
        conn.execute("select workflow.start_flows('limited', %s::jsonb[])", [inputs])

    stop = threading.Event()
    samples: list[int] = []
    backends: list[int] = []
    errors: list[BaseException] = []
    claimed: list[int] = []
    threads = [
        threading.Thread(target=_driver, args=(db_url, stop, samples, backends, errors, claimed))
        for _ in range(DRIVERS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    kills = 0
    total = KEYS * RUNS_PER_KEY
    try:
        with psycopg.connect(db_url, autocommit=True) as watcher:
            deadline = started + 120
            while time.monotonic() < deadline and not errors:
                time.sleep(0.3)
                if kills < 10 and backends:
                    pid: Any = random.choice(backends[-DRIVERS:])
                    watcher.execute("select pg_terminate_backend(%s)", [pid])
                    kills += 1
                done = watcher.execute(_DONE).fetchone()
                assert done is not None
                if done[0] == total:
                    break
            elapsed = time.monotonic() - started
            finished = watcher.execute(_DONE).fetchone()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert finished is not None
    assert finished[0] == total, f"{finished[0]} of {total} runs completed"
    assert samples and max(samples) <= LIMIT, f"a key had {max(samples)} tasks running"
    assert max(samples) == LIMIT, "the limit was never reached: the test proves nothing"
    print(
        f"\nLIMITS: {total} tasks over {KEYS} keys (limit {LIMIT}), {DRIVERS} connections,"
        f" {kills} kills: {elapsed:.1f} s, {total / elapsed:.0f} tasks/s,"
        f" {len(samples)} samples, max per key {max(samples)}"
    )


@pytest.mark.parametrize("limit", [0, -1])
def test_a_non_positive_limit_is_refused(conn: psycopg.Connection[Any], limit: int) -> None:
    client = Client(conn)
    with pytest.raises(InvalidLimit):
        client.set_concurrency_limit("queue", "default", limit)


def test_the_cli_sets_lists_and_removes_limits(db_url: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": db_url}
    result = runner.invoke(main, ["limits", "set", "queue", "cli_q", "4"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == "queue cli_q: at most 4 running\n"
    listed = runner.invoke(main, ["limits", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert any(line.split()[:3] == ["concurrency", "queue", "cli_q"]
               and line.split()[-2:] == ["0", "4"]
               for line in listed.output.splitlines()), listed.output
    rate = runner.invoke(main, ["limits", "set", "queue", "cli_q", "5", "--per", "2"], env=env)
    assert rate.output == "queue cli_q: at most 5 starts per 2 s\n", rate.output
    listed = runner.invoke(main, ["limits", "list", "--json"], env=env)
    assert '"per_seconds": "2"' in listed.output, listed.output
    assert runner.invoke(main, ["limits", "remove", "queue", "cli_q", "--rate"], env=env).output \
        == "queue cli_q: removed\n"
    bad = runner.invoke(main, ["limits", "set", "queue", "cli_q", "0"], env=env)
    assert bad.exit_code == 1 and "WF023" in bad.output, bad.output
    removed = runner.invoke(main, ["limits", "remove", "queue", "cli_q"], env=env)
    assert removed.output == "queue cli_q: removed\n"
    again = runner.invoke(main, ["limits", "remove", "queue", "cli_q"], env=env)
    assert again.output == "queue cli_q: no such limit\n"


def test_the_client_orders_a_queue_by_priority_and_reports_waiting_on_a_limit(
    conn: psycopg.Connection[Any],
) -> None:
    client = Client(conn)
    client.register_flow({"slug": "prio", "steps": [
        {"slug": "only", "execution": "distributed", "queue": "prio"}]})
    client.set_queue_order("prio")
    low = client.start_flow("prio", {"tenant": "a"})
    high = client.start_flow("prio", {"tenant": "a"}, priority=3)
    assert [t.run_id for t in client.claim_tasks("prio", 1)] == [high]
    client.set_concurrency_limit("flow", "prio", 1)
    waiting = client.get_run_status(low).steps[0].waiting_on_limits
    assert [(w["kind"], w["scope"], w["in_use"], w["max"]) for w in waiting] == [
        ("concurrency", "flow", 1, 1)
    ]
    assert client.claim_tasks("prio", 1) == []
    assert client.remove_queue_order("prio") is True
    assert client.remove_concurrency_limit("flow", "prio") is True


def _rate_driver(url: str, stop: threading.Event, errors: list[BaseException]) -> None:
    """Claim from the rate-limited queue and complete at once, until stopped."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "select task_id, attempt from workflow.claim_tasks('rated', 50)"
                ).fetchall()
                for task_id, attempt in rows:
                    conn.execute("select workflow.complete_task(%s, %s, '{}')", [task_id, attempt])
                if not rows:
                    time.sleep(0.02)
    except BaseException as exc:  # noqa: BLE001 - reported to the test thread
        errors.append(exc)


def test_a_rate_limit_holds_across_connections_in_every_sliding_window(db_url: str) -> None:
    rate, window = 20, 1.0
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "select workflow.register_flow(%s)",
            [Jsonb({"slug": "rated", "steps": [
                {"slug": "only", "execution": "distributed", "queue": "rated"}]})],
        )
        conn.execute(
            "select workflow.set_rate_limit('queue', 'rated', %s::integer, %s::numeric)",
            [rate, window],
        )
        inputs = [Jsonb({"n": i}) for i in range(70)]
        conn.execute("select workflow.start_flows('rated', %s::jsonb[])", [inputs])
    stop = threading.Event()
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_rate_driver, args=(db_url, stop, errors)) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(3.5)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not errors, errors
    with psycopg.connect(db_url, autocommit=True) as conn:
        # Every start's window: the starts in [its start, its start + window).
        row = conn.execute(
            "select max((select count(*) from workflow.tasks b where b.queue_name = 'rated'"
            "   and b.started_at >= a.started_at"
            "   and b.started_at < a.started_at + make_interval(secs => %s))),"
            " count(*) from workflow.tasks a where a.queue_name = 'rated'"
            " and a.started_at is not null",
            [window],
        ).fetchone()
    assert row is not None
    busiest, started = row
    assert started >= 2 * rate, f"only {started} starts: the test proves nothing"
    assert busiest <= rate, f"{busiest} starts in one {window} s window (limit {rate})"
    assert busiest == rate


def _priorities(conn: psycopg.Connection[Any], flow: str) -> dict[str, int]:
    """Return the stored step priorities of ``flow``."""
    rows = conn.execute(
        "select step_slug, priority from workflow.step_priorities where flow_slug = %s", [flow]
    ).fetchall()
    return {slug: priority for slug, priority in rows}


def test_a_step_priority_declared_in_python_is_stored_and_is_not_part_of_the_shape(
    conn: psycopg.Connection[Any],
) -> None:
    client = Client(conn)

    class Prioritised(Workflow):
        __workflow_slug__ = "tests.prioritised"

        @step(execution="distributed", queue="prio_py", priority=7)
        def first(self, input: Any) -> Any:
            return input

        @step(depends_on=["first"], execution="distributed", queue="prio_py")
        def second(self, input: Any) -> Any:
            return input

    class Plain(Workflow):
        __workflow_slug__ = "tests.prioritised"

        @step(execution="distributed", queue="prio_py")
        def first(self, input: Any) -> Any:
            return input

        @step(depends_on=["first"], execution="distributed", queue="prio_py")
        def second(self, input: Any) -> Any:
            return input

    with_priority, without = workflow_def(Prioritised), workflow_def(Plain)
    assert with_priority.step("first").priority == 7
    assert with_priority.step("second").priority is None
    client.register_flow(with_priority)
    assert _priorities(conn, "tests.prioritised") == {"first": 7}
    # The same shape: one version, one hash; the plain definition leaves the priority alone.
    assert client.flow_shape_hash(with_priority.definition()) == client.flow_shape_hash(
        without.definition()
    )
    client.register_flow(without)
    assert [v.version for v in client.list_flow_versions("tests.prioritised")] == [1]
    assert _priorities(conn, "tests.prioritised") == {"first": 7}


def test_the_list_form_and_the_builder_take_a_priority(conn: psycopg.Connection[Any]) -> None:
    client = Client(conn)

    class Listed:
        __workflow_slug__ = "tests.prioritised_list"
        __workflow_steps__: ClassVar[list[Any]] = [
            ("a", print, {"execution": "distributed", "queue": "prio_py", "priority": -3}),
        ]

    client.register_flow(workflow_def(Listed))
    assert _priorities(conn, "tests.prioritised_list") == {"a": -3}
    builder = FlowBuilder(client)
    flow = builder.create_flow("tests.prioritised_built")
    builder.add_step(flow, "a", execution="distributed", queue="prio_py", priority=1000)
    builder.add_step(flow, "b", ["a"], execution="distributed", queue="prio_py")
    assert _priorities(conn, flow) == {"a": 1000}


@pytest.mark.parametrize("bad", [1001, -1001, 1.5, "high", True])
def test_a_bad_step_priority_is_refused_before_the_database(bad: Any) -> None:
    def make() -> type:
        class Bad(Workflow):
            __workflow_slug__ = "tests.bad_priority"

            @step(priority=bad)
            def only(self, input: Any) -> Any:
                return input

        return Bad

    with pytest.raises(DefinitionError) as err:
        workflow_def(make())
    assert err.value.code == "WF010"


def test_the_builder_refuses_a_bad_priority_and_stores_no_step(
    conn: psycopg.Connection[Any],
) -> None:
    builder = FlowBuilder(Client(conn))
    flow = builder.create_flow("tests.prioritised_bad")
    with pytest.raises(InvalidOption):
        builder.add_step(flow, "a", priority=2000)
    assert builder.get_flow(flow)["steps"] == []
