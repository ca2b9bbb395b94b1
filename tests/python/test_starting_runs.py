"""Starting runs: schedule ticks, idempotency keys, schedules declared on a workflow class.

Ticks fire exactly once under racing, killed processes; keys hold under concurrent starts;
a class's schedules are registered with its flow.

The tick race: 4 processes call ``workflow.fire_due_schedules`` in a loop with an injected
clock that runs 20 schedule minutes per real second, so a per-minute schedule ticks 20 times a
second; each call holds its transaction open for a random few milliseconds, and the test
SIGKILLs a random process (restarting it) every few hundred milliseconds, often mid-transaction.
Afterwards every tick from the first to the last has exactly one run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest

from singularity_workflow import (
    AsyncClient,
    Client,
    InvalidCron,
    KeyConflict,
    Schedule,
    UnknownTimeZone,
    Workflow,
    start_flow,
    start_flow_async,
    step,
)
from singularity_workflow import start_flows as start_batch

REPO = Path(__file__).resolve().parents[2]
BASE = datetime(2100, 1, 1, tzinfo=UTC)
#: Schedule minutes per real second of the tick race.
SPEED = 20
RACE_SECONDS = 10.0

FIRER = textwrap.dedent(
    """
    import random, sys, time
    from datetime import datetime, timedelta, timezone
    import psycopg

    url, t0, speed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    base = datetime(2100, 1, 1, tzinfo=timezone.utc)
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            now = base + timedelta(minutes=(time.time() - t0) * speed)
            with conn.transaction():
                conn.execute("select workflow.fire_due_schedules(%s)", [now])
                # Hold the transaction a little, so that kills land inside it.
                time.sleep(random.random() * 0.01)
    """
)


def _flow(client: Client, slug: str) -> None:
    """Register a one-step distributed flow that nobody serves (its runs just stay started)."""
    client.register_flow(
        {
            "slug": slug,
            "steps": [
                {"slug": "only", "execution": "distributed", "queue": "nobody_q"}
            ],
        }
    )


def _firer(db_url: str, t0: float) -> subprocess.Popen[bytes]:
    """Start one process calling fire_due_schedules in a loop."""
    return subprocess.Popen(
        [sys.executable, "-c", FIRER, db_url, str(t0), str(SPEED)],
        env=dict(os.environ, PYTHONPATH=str(REPO / "python")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_each_tick_fires_exactly_once_under_racing_killed_processes(
    db_url: str,
) -> None:
    with Client(db_url) as client, psycopg.connect(db_url, autocommit=True) as conn:
        _flow(client, "tick_race")
        conn.execute(
            "select workflow.create_schedule('race', 'tick_race', '* * * * *', missed => 'each',"
            " max_catch_up => 1000, now => %s)",
            [BASE],
        )
        t0 = time.time()
        procs = [_firer(db_url, t0) for _ in range(4)]
        kills = 0
        rng = random.Random(17)
        try:
            while time.time() - t0 < RACE_SECONDS:
                time.sleep(rng.uniform(0.1, 0.4))
                victim = rng.randrange(len(procs))
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                kills += 1
                procs[victim] = _firer(db_url, t0)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        # Every tick up to the last whole minute of the race's clock, fired by a last caller.
        minutes = int((time.time() - t0) * SPEED)
        end = BASE + timedelta(minutes=minutes)
        # A killed client's server backend may hold the schedule's lock a moment longer (SKIP
        # LOCKED passes it by): call again until the schedule has moved past the end.
        deadline = time.time() + 10
        while time.time() < deadline:
            conn.execute("select workflow.fire_due_schedules(%s)", [end])
            next_fire = conn.execute(
                "select next_fire_at from workflow.schedules where schedule_name = 'race'"
            ).fetchone()
            if next_fire is not None and next_fire[0] > end:
                break
            time.sleep(0.1)
        rows = conn.execute(
            "select scheduled_for, count(*) from workflow.runs where schedule_name = 'race'"
            " group by scheduled_for order by scheduled_for"
        ).fetchall()
    expected = [BASE + timedelta(minutes=m) for m in range(1, minutes + 1)]
    assert kills >= 20
    assert len(expected) >= 150, "the race covered too few ticks to mean anything"
    assert [r[0] for r in rows] == expected, "a tick is missing or out of place"
    assert all(r[1] == 1 for r in rows), "a tick has more than one run"
    print(f"{len(expected)} ticks, {kills} kills: one run each")


def test_concurrent_starts_with_idempotency_keys_make_one_run_per_key(
    db_url: str,
) -> None:
    with Client(db_url) as client:
        _flow(client, "keyed")
    keys = [f"k{i % 100}" for i in range(1000)]
    random.Random(3).shuffle(keys)
    chunks = [keys[i::8] for i in range(8)]
    results: list[list[tuple[str, Any]]] = [[] for _ in chunks]
    barrier = threading.Barrier(len(chunks))
    errors: list[BaseException] = []

    def starter(index: int) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                barrier.wait()
                for key in chunks[index]:
                    run_id = conn.execute(
                        "select workflow.start_flow('keyed', %s::jsonb, idempotency_key => %s)",
                        [f'{{"key": "{key}"}}', key],
                    ).fetchone()
                    assert run_id is not None
                    results[index].append((key, run_id[0]))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=starter, args=(i,)) for i in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    by_key: dict[str, set[Any]] = {}
    for part in results:
        for key, run_id in part:
            by_key.setdefault(key, set()).add(run_id)
    assert len(by_key) == 100
    assert all(len(ids) == 1 for ids in by_key.values()), "a key got two runs"
    with psycopg.connect(db_url, autocommit=True) as conn:
        count = conn.execute(
            "select count(*) from workflow.runs where flow_slug = 'keyed'"
        ).fetchone()
    assert count == (100,)


class Nightly(Workflow):
    """A workflow with two declared schedules."""

    slug = "test_starting_runs.nightly"
    schedules: ClassVar[list[Schedule]] = [
        Schedule(cron="0 3 * * *", timezone="Europe/Berlin", input={"kind": "nightly"}),
        Schedule(cron="@hourly", missed="once", name="nightly_hourly", enabled=False),
    ]

    @step(execution="distributed", queue="nobody_q")
    def only(self, input: Any) -> Any:
        """Do nothing."""
        return input


def test_schedules_declared_on_a_workflow_class_are_registered_with_it(
    db_url: str,
) -> None:
    with Client(db_url) as client:
        client.register_flow(Nightly)
        by_name = {s.schedule_name: s for s in client.list_schedules()}
        first = by_name["test_starting_runs.nightly"]
        assert (first.cron, first.timezone, first.input, first.enabled) == (
            "0 3 * * *",
            "Europe/Berlin",
            {"kind": "nightly"},
            True,
        )
        assert first.next_fire_at is not None
        assert by_name["nightly_hourly"].enabled is False
        assert by_name["nightly_hourly"].next_fire_at is None
        times = client.next_fire_times("test_starting_runs.nightly", 3)
        assert [t - times[0] for t in times] == [
            timedelta(0),
            timedelta(days=1),
            timedelta(days=2),
        ]
        # Registering again is a no-op; a changed class updates the schedule, keeping enabled.
        client.disable_schedule("test_starting_runs.nightly")
        client._register_schedules(
            "test_starting_runs.nightly",
            [Schedule(cron="0 4 * * *", timezone="Europe/Berlin")],
        )
        again = {s.schedule_name: s for s in client.list_schedules()}[
            "test_starting_runs.nightly"
        ]
        assert (again.cron, again.enabled) == ("0 4 * * *", False)
        run_id = client.trigger_schedule("nightly_hourly")
        assert client.get_run_status(run_id).state == "running"


def test_bad_schedules_and_keys_raise_their_errors(db_url: str) -> None:
    with Client(db_url) as client:
        _flow(client, "bad_input")
        with pytest.raises(InvalidCron, match="day of week field"):
            client.create_schedule("b1", "bad_input", "0 0 * * someday")
        with pytest.raises(UnknownTimeZone):
            client.create_schedule("b2", "bad_input", "@daily", timezone="Nowhere/Land")
        assert not {"b1", "b2"} & {s.schedule_name for s in client.list_schedules()}
        first = client.start_flow("bad_input", {"a": 1}, idempotency_key="once")
        assert client.start_flow("bad_input", {"a": 1}, idempotency_key="once") == first
        with pytest.raises(KeyConflict):
            client.start_flow("bad_input", {"a": 2}, idempotency_key="once")
        later = client.start_flow(
            "bad_input", {}, start_at=datetime.now(UTC) + timedelta(hours=1)
        )
        assert client.get_run_status(later).state == "scheduled"
        client.cancel_workflow_run(later)
        assert client.get_run_status(later).state == "cancelled"


def test_the_module_level_start_takes_the_clients_keywords(db_url: str) -> None:
    # start_flow / start_flows at module level (and their _async forms, generated from them)
    # forward what Client.start_flow takes: a repeat with the same idempotency key is the
    # first run, and the batch form takes the keys of each input.
    with Client(db_url) as client:
        client.register_flow({"slug": "tests.module_start", "steps": [
            {"slug": "only", "execution": "distributed", "queue": "module_start_q"}]})
        first = start_flow("tests.module_start", {"n": 1}, idempotency_key="k1", priority=5,
                           client=client)
        again = start_flow("tests.module_start", {"n": 1}, idempotency_key="k1", client=client)
        assert again == first
        batch = start_batch("tests.module_start", [{"n": 2}, {"n": 3}],
                            idempotency_keys=["k2", "k3"], client=client)
        assert start_batch("tests.module_start", [{"n": 2}], idempotency_keys=["k2"],
                           client=client) == batch[:1]

        async def from_asyncio() -> Any:
            aclient = AsyncClient(client.conninfo)
            try:
                return await start_flow_async("tests.module_start", {"n": 1},
                                              idempotency_key="k1", client=aclient)
            finally:
                await aclient.close()

        assert asyncio.run(from_asyncio()) == first
        for run_id in {first, *batch}:
            client.cancel_workflow_run(run_id)
