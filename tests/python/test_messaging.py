"""Messaging: channels, listeners (iterator, callback, async), reconnection, events and the CLI.

Every listener here has its own server connection and every sender uses its own: the claims are
about delivery between sessions (and processes), so nothing shares a connection. The reconnection
tests kill the listener's backend with ``pg_terminate_backend`` while a separate process keeps
sending, and then require every persisted message exactly once, by id.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.types.json import Jsonb

from singularity_workflow import (
    ChannelMessage,
    Client,
    InvalidName,
    InvalidOption,
    Listener,
    Notification,
    PayloadTooLarge,
    WorkflowEvent,
    listen,
    unlisten,
)
from singularity_workflow._listen import _Cursor
from singularity_workflow.cli import main

REPO = Path(__file__).resolve().parents[2]
Item = Notification | WorkflowEvent


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    """Yield a client with its own connection, closed after the test."""
    with Client(db_url) as c:
        yield c


def fresh_channel() -> str:
    """Return a channel name no other test uses."""
    return f"t_{secrets.token_hex(6)}"


def collect(listener: Listener, count: int, timeout: float = 30.0) -> list[Item]:
    """Take ``count`` items from ``listener``, failing the test if they do not come in time."""
    items: list[Item] = []
    deadline = time.monotonic() + timeout
    while len(items) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {len(items)} of {count} items in {timeout} s"
        item = listener.get(timeout=remaining)
        if item is not None:
            items.append(item)
    return items


def kill_backend(db_url: str, pid: int | None) -> None:
    """Terminate a server process and wait until it is gone."""
    assert pid is not None
    with psycopg.connect(db_url, autocommit=True) as admin:
        assert admin.execute("select pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        for _ in range(500):
            row = admin.execute(
                "select count(*) from pg_stat_activity where pid = %s", [pid]
            ).fetchone()
            if row == (0,):
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still alive")


# -- the client's calls ---------------------------------------------------------------------------


def test_send_with_notify_persists_messages_that_read_channel_returns_in_id_order(
    client: Client,
) -> None:
    channel = fresh_channel()
    assert client.read_channel(channel) == []
    ids = [client.send_with_notify(channel, {"n": n}) for n in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    history = client.read_channel(channel)
    assert [m.message_id for m in history] == ids
    assert [m.message for m in history] == [{"n": n} for n in range(5)]
    assert all(isinstance(m, ChannelMessage) and not m.acknowledged for m in history)
    assert [m.message_id for m in client.read_channel(channel, after_id=ids[1], limit=2)] == ids[
        2:4
    ]
    assert client.last_message_id(channel) == ids[-1]
    assert client.last_message_id(fresh_channel()) == 0
    # Any JSON value is a message, not only objects.
    scalar = client.send_with_notify(channel, "plain text")
    assert client.read_channel(channel, after_id=scalar - 1)[0].message == "plain text"


def test_ack_message_archives_once_and_history_keeps_it(client: Client) -> None:
    channel = fresh_channel()
    first, second = (client.send_with_notify(channel, {"n": n}) for n in range(2))
    assert client.ack_message(channel, first) is True
    assert client.ack_message(channel, first) is False
    assert client.ack_message(fresh_channel(), 1) is False
    history = client.read_channel(channel)
    assert [(m.message_id, m.acknowledged) for m in history] == [(first, True), (second, False)]
    assert client.last_message_id(channel) == second
    client.ack_message(channel, second)
    assert client.last_message_id(channel) == second


def test_bad_channel_names_are_invalid_name_wf001_on_every_path(client: Client) -> None:
    for bad in ("Upper", "has-dash", "9starts_with_digit", "x" * 44, "workflow_run_x", ""):
        with pytest.raises(InvalidName) as sent:
            client.send_with_notify(bad, {})
        assert sent.value.code == "WF001"
        with pytest.raises(InvalidName):
            client.notify_only(bad, "x")
    for bad in ("Upper", "workflow_run_not-a-uuid", "workflow_q_Bad", "x" * 44):
        with pytest.raises(InvalidName) as listened:
            listen(bad, client=client)
        assert listened.value.code == "WF001"
    with pytest.raises(InvalidName):
        client.read_channel("has-dash")


def test_oversize_notify_payload_is_payload_too_large_wf014(client: Client) -> None:
    channel = fresh_channel()
    with listen(channel, client=client) as listener:
        client.notify_only(channel, "x" * 7999)
        with pytest.raises(PayloadTooLarge) as raised:
            client.notify_only(channel, "x" * 8000)
        assert raised.value.code == "WF014"
        with pytest.raises(PayloadTooLarge):
            client.notify_only(channel, "é" * 4000)  # 8,000 bytes in UTF-8
        got = collect(listener, 1)
        assert isinstance(got[0], Notification)
        assert got[0].message_id is None and got[0].payload == "x" * 7999
        assert got[0].fetch() is None
        assert listener.get(timeout=0.3) is None


def test_invalid_messages_and_limits_fail_before_or_at_the_server(client: Client) -> None:
    with pytest.raises(TypeError):
        client.send_with_notify(fresh_channel(), {"not json": object()})
    with pytest.raises(InvalidOption):
        client.read_channel(fresh_channel(), limit=0)
    with pytest.raises(InvalidOption):
        client.read_events(limit=0)


# -- listeners ------------------------------------------------------------------------------------


def send_many(db_url: str, channel: str, count: int, sent: list[int]) -> None:
    """Send ``count`` messages on ``channel`` from a client of this thread's own."""
    with Client(db_url) as own:
        for n in range(count):
            sent.append(own.send_with_notify(channel, {"channel": channel, "n": n}))


def test_two_listeners_each_receive_every_message_of_several_channels_in_order(
    db_url: str, client: Client
) -> None:
    channels = [fresh_channel() for _ in range(3)]
    per_channel = 200
    first = listen(*channels, client=client)
    second = listen(*channels, client=Client(db_url))
    sent: dict[str, list[int]] = {c: [] for c in channels}
    senders = [
        threading.Thread(target=send_many, args=(db_url, c, per_channel, sent[c]))
        for c in channels
    ]
    try:
        for s in senders:
            s.start()
        results = [collect(first, 3 * per_channel), collect(second, 3 * per_channel)]
        for s in senders:
            s.join()
        for items in results:
            by_channel: dict[str, list[int | None]] = defaultdict(list)
            for item in items:
                assert isinstance(item, Notification) and not item.replayed
                by_channel[item.channel].append(item.message_id)
            assert by_channel == sent
        sample = results[1][-1]
        fetched = sample.fetch()
        assert isinstance(fetched, ChannelMessage)
        assert fetched.message == {"channel": sample.channel, "n": per_channel - 1}
        assert first.get(timeout=0.2) is None and second.get(timeout=0.2) is None
    finally:
        unlisten(first)
        second.close()
        second.client.close()
    assert first.closed and first.backend_pid is None
    assert first.get(timeout=0.1) is None


SENDER = """
import sys, time
from singularity_workflow import Client
url, channel, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
with Client(url) as client:
    for n in range(count):
        client.send_with_notify(channel, {"n": n})
        time.sleep(pause)
"""


def start_sender(db_url: str, channel: str, count: int, pause: float) -> subprocess.Popen[str]:
    """Start a separate process that sends ``count`` messages, one every ``pause`` seconds."""
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, db_url, channel, str(count), str(pause)], text=True
    )


def wait_for_messages(client: Client, channel: str, at_least: int) -> None:
    """Wait until ``channel`` holds at least ``at_least`` messages."""
    deadline = time.monotonic() + 30
    while client.last_message_id(channel) < at_least:
        assert time.monotonic() < deadline, "the sender process stalled"
        time.sleep(0.01)


def test_a_killed_listener_reconnects_and_gets_every_message_exactly_once_in_order(
    db_url: str, client: Client
) -> None:
    channel = fresh_channel()
    total = 600
    listener = listen(channel, client=Client(db_url))
    sender = start_sender(db_url, channel, total, 0.002)
    try:
        received = collect(listener, 100)
        for round_ in range(2):
            kill_backend(db_url, listener.backend_pid)
            # Messages keep being committed (and notified to no one) while it is away.
            wait_for_messages(client, channel, 100 + 200 * round_ + 60)
            received += collect(listener, 100)
        assert sender.wait(timeout=60) == 0
        received += collect(listener, total - len(received))
        assert listener.get(timeout=0.5) is None  # nothing more: no duplicates at the end
    finally:
        sender.kill()
        listener.close()
    ids = [item.message_id for item in received]
    assert ids == list(range(1, total + 1))  # every message, once, in order
    assert listener.reconnects == 2
    replayed = [item for item in received if isinstance(item, Notification) and item.replayed]
    assert len(replayed) >= 2 * 60 - 10
    for item in replayed[:5] + received[-5:]:
        fetched = item.fetch()
        assert isinstance(fetched, ChannelMessage)
        assert fetched.message == {"n": fetched.message_id - 1}


def test_a_message_committed_late_below_a_newer_id_is_replayed_after_a_reconnect(
    db_url: str, client: Client
) -> None:
    # A sender's transaction takes id k but commits after id k+1 has been delivered; the
    # listener is away when k commits. Replaying after the newest id seen would lose k.
    channel = fresh_channel()
    client.send_with_notify(channel, {"before": True})
    with listen(channel, client=Client(db_url), gap_timeout=60) as listener:
        with psycopg.connect(db_url) as holder:  # a transaction left open
            late = holder.execute(
                "select workflow.send_with_notify(%s, %s)", [channel, Jsonb({"late": True})]
            ).fetchone()
            assert late is not None
            early = client.send_with_notify(channel, {"early": True})
            assert early == late[0] + 1
            got = collect(listener, 1)
            assert got[0].message_id == early
            kill_backend(db_url, listener.backend_pid)
            holder.commit()  # its NOTIFY goes to no one
        replayed = collect(listener, 1)
        assert replayed[0].message_id == late[0]
        assert isinstance(replayed[0], Notification) and replayed[0].replayed
        assert listener.get(timeout=0.5) is None  # and the early one is not repeated


def test_with_no_gap_timeout_a_late_commit_missed_while_away_is_not_replayed(
    db_url: str, client: Client
) -> None:
    # The counterpart of the test above: the documented limit of gap_timeout, shown to bite.
    channel = fresh_channel()
    client.send_with_notify(channel, {"before": True})
    with listen(channel, client=Client(db_url), gap_timeout=0) as listener:
        with psycopg.connect(db_url) as holder:
            holder.execute("select workflow.send_with_notify(%s, '{}')", [channel])
            client.send_with_notify(channel, {"early": True})
            collect(listener, 1)
            listener.get(timeout=0.3)  # a receive round: the hole is given up at once
            kill_backend(db_url, listener.backend_pid)
            holder.commit()
        assert listener.get(timeout=1.0) is None
        assert listener.reconnects == 1


def test_messages_sent_in_one_transaction_arrive_together_and_a_rollback_sends_none(
    db_url: str, client: Client
) -> None:
    channel = fresh_channel()
    with listen(channel, client=client) as listener, psycopg.connect(
        db_url, autocommit=True
    ) as conn:
        with conn.transaction():
            ids = [client.send_with_notify(channel, {"n": n}, conn=conn) for n in range(3)]
            assert listener.get(timeout=0.3) is None  # not committed yet
        assert [i.message_id for i in collect(listener, 3)] == ids
        with pytest.raises(RuntimeError), conn.transaction():
            client.send_with_notify(channel, {"rolled": "back"}, conn=conn)
            raise RuntimeError("roll back")
        after = client.send_with_notify(channel, {"n": 3})
        got = collect(listener, 1)
        assert got[0].message_id == after == ids[-1] + 2  # the rolled-back id is a hole
        assert listener.get(timeout=0.3) is None


def test_replay_from_delivers_history_before_live_messages(client: Client) -> None:
    channel, other = fresh_channel(), fresh_channel()
    old = [client.send_with_notify(channel, {"n": n}) for n in range(5)]
    other_old = client.send_with_notify(other, {"other": True})
    with listen(channel, other, client=client, replay_from={channel: old[1]}) as listener:
        live = client.send_with_notify(channel, {"n": 5})
        items = collect(listener, 4)
        assert [(i.channel, i.message_id) for i in items] == [
            (channel, old[2]), (channel, old[3]), (channel, old[4]), (channel, live)
        ]
        assert [isinstance(i, Notification) and i.replayed for i in items] == [True] * 3 + [False]
        assert listener.get(timeout=0.3) is None  # `other` starts from its newest id
    assert other_old == 1
    with listen(other, client=client, replay_from=0) as everything:
        assert [i.message_id for i in collect(everything, 1)] == [other_old]


def test_callback_form_receives_everything_across_a_reconnect_and_survives_a_bad_callback(
    db_url: str, client: Client
) -> None:
    channels = [fresh_channel(), fresh_channel()]
    total = 200
    got: list[Item] = []
    done = threading.Event()

    def on_message(item: Item) -> None:
        got.append(item)
        if len(got) == 1:
            raise RuntimeError("a failing callback must not end the subscription")
        if len(got) == total:
            done.set()

    listener = listen(*channels, client=Client(db_url), on_message=on_message)
    try:
        for n in range(total):
            client.send_with_notify(channels[n % 2], {"n": n})
            if n == total // 2:
                kill_backend(db_url, listener.backend_pid)
        assert done.wait(30), f"callback got {len(got)} of {total}"
        with pytest.raises(RuntimeError):
            iter(listener)
    finally:
        listener.close()
    assert listener._thread is not None and not listener._thread.is_alive()
    assert listener.error is None and listener.reconnects == 1
    for channel in channels:
        assert [i.message_id for i in got if i.channel == channel] == list(range(1, total // 2 + 1))


def test_async_for_receives_messages_without_blocking_the_event_loop(
    db_url: str, client: Client
) -> None:
    channel = fresh_channel()
    total = 50

    def send_later() -> None:
        time.sleep(0.3)
        send_many(db_url, channel, total, [])

    async def scenario() -> tuple[list[Item], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        got: list[Item] = []
        async with Listener([channel], client=client) as listener:
            threading.Thread(target=send_later).start()
            async for item in listener:
                got.append(item)
                if len(got) == total:
                    break
        ticking.cancel()
        return got, ticks

    got, ticks = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert [i.message_id for i in got] == list(range(1, total + 1))
    assert ticks >= 10  # the loop ran while the listener waited for the first message


def test_async_for_ends_when_the_listener_is_closed(client: Client) -> None:
    channel = fresh_channel()

    async def scenario() -> list[Item]:
        listener = listen(channel, client=client)
        asyncio.get_running_loop().call_later(0.3, listener.close)
        return [item async for item in listener]

    assert asyncio.run(asyncio.wait_for(scenario(), timeout=10)) == []


# -- workflow events ------------------------------------------------------------------------------

FLOW_SLUG = "tests.messaging.events"
FLOW: dict[str, Any] = {
    "slug": FLOW_SLUG,
    "steps": [
        {"slug": "a", "execution": "distributed", "queue": "msg_events"},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"], "queue": "msg_events",
         "max_attempts": 1},
    ],
}


def drive(client: Client, fail_b: bool = False) -> None:
    """Claim and report the two tasks of one run of FLOW, as a worker would."""
    for step in ("a", "b"):
        tasks = client.claim_tasks("msg_events", 1, worker_id="test")
        assert [t.step_slug for t in tasks] == [step]
        task = tasks[0]
        if step == "b" and fail_b:
            assert client.fail_tasks([(task.task_id, task.attempt, "boom")]) == {
                task.task_id: "failed"
            }
        else:
            assert client.complete_tasks([(task.task_id, task.attempt, {"step": step})]) == {
                task.task_id: True
            }


def events_of(items: list[Item]) -> list[tuple[str, str | None]]:
    """Return (event, step) of each item, which must all be WorkflowEvents."""
    assert all(isinstance(i, WorkflowEvent) for i in items)
    return [(i.event, i.step_slug) for i in items if isinstance(i, WorkflowEvent)]


def test_a_runs_events_arrive_on_its_own_channel_and_on_workflow_run_events(
    db_url: str, client: Client
) -> None:
    client.register_flow(FLOW)
    run_id = uuid4()
    per_run = listen(f"workflow_run_{run_id}", client=Client(db_url))
    everything = listen("workflow_run_events", client=Client(db_url))
    try:
        client.start_flow(FLOW_SLUG, {"x": 1}, run_id=run_id)
        drive(client)
        expected = [("run_started", None), ("step_completed", "a"), ("step_completed", "b"),
                    ("run_completed", None)]
        mine = collect(per_run, 4)
        assert events_of(mine) == expected
        assert all(i.channel == f"workflow_run_{run_id}" for i in mine)
        assert [i.status for i in mine if isinstance(i, WorkflowEvent)] == [
            "started", None, None, "completed"
        ]
        assert {i.run_id for i in mine if isinstance(i, WorkflowEvent)} == {run_id}
        seen = collect(everything, 4)
        assert [i.message_id for i in seen] == [i.message_id for i in mine]
        assert all(i.channel == "workflow_run_events" for i in seen)
        # A second run that fails: only the global listener hears of it.
        other = client.start_flow(FLOW_SLUG, {"x": 2})
        drive(client, fail_b=True)
        failed = collect(everything, 4)
        assert events_of(failed) == [("run_started", None), ("step_completed", "a"),
                                     ("step_failed", "b"), ("run_failed", None)]
        assert {i.run_id for i in failed if isinstance(i, WorkflowEvent)} == {other}
        assert per_run.get(timeout=0.3) is None
    finally:
        per_run.close()
        everything.close()
    # History: the run's events from the start, for a listener that came late.
    with listen(f"workflow_run_{run_id}", client=client, replay_from=0) as late:
        assert events_of(collect(late, 4)) == expected
    assert [e.event for e in client.read_events(run_id=run_id)] == [e for e, _ in expected]


def test_the_events_listener_replays_events_it_missed_while_disconnected(
    db_url: str, client: Client
) -> None:
    client.register_flow(FLOW)
    with listen("workflow_run_events", client=Client(db_url)) as listener:
        first = client.start_flow(FLOW_SLUG, {})
        assert events_of(collect(listener, 1)) == [("run_started", None)]
        kill_backend(db_url, listener.backend_pid)
        drive(client)
        items = collect(listener, 3)
        assert events_of(items) == [("step_completed", "a"), ("step_completed", "b"),
                                    ("run_completed", None)]
        assert {i.run_id for i in items if isinstance(i, WorkflowEvent)} == {first}
        assert listener.get(timeout=0.3) is None and listener.reconnects == 1


def test_a_replay_over_old_history_with_holes_does_not_wait_on_them(
    db_url: str, client: Client
) -> None:
    # Pruned or rolled-back ids leave holes in old history. A hole below a row older than
    # gap_timeout is given up at once; otherwise every later read would re-read from the hole.
    channel = fresh_channel()
    ids = [client.send_with_notify(channel, {"n": n}) for n in range(6)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pgmq.delete(%s, %s::bigint)", [f"wfch_{channel}", ids[2]])
    time.sleep(0.6)
    with listen(channel, client=client, replay_from=0, gap_timeout=0.5) as listener:
        replayed = collect(listener, 5)
        assert [i.message_id for i in replayed] == ids[:2] + ids[3:]
        cursor = listener._channels[channel].cursor
        assert cursor is not None and cursor.floor == ids[-1] and not cursor.above
    with listen(channel, client=client, replay_from=0, gap_timeout=60) as patient:
        collect(patient, 5)
        cursor = patient._channels[channel].cursor
        assert cursor is not None and cursor.floor == ids[1]  # still waiting on the hole


# -- the cursor's bookkeeping (no database) -------------------------------------------------------


def test_cursor_suppresses_duplicates_and_keeps_its_floor_below_holes() -> None:
    cursor = _Cursor(10, dense=True, gap_timeout=60)
    assert [cursor.accept(i) for i in (11, 13, 13, 11, 14)] == [True, True, False, False, True]
    assert cursor.floor == 11  # 12 is a hole: a replay must read from 11
    assert cursor.accept(12) and cursor.floor == 14 and not cursor.above
    cursor.accept(16)
    cursor.expire_gaps(time.monotonic())
    assert cursor.floor == 14  # not yet expired
    cursor.expire_gaps(time.monotonic() + 61)
    assert cursor.floor == 16
    cursor.accept(18)
    cursor.settle(17)  # a hole below an old row: given up without waiting
    assert cursor.floor == 18 and not cursor.above
    sparse = _Cursor(0, dense=False, gap_timeout=60)
    assert [sparse.accept(i) for i in (5, 9, 7, 9)] == [True, True, True, False]
    assert sparse.floor == 9


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a CliRunner with no DATABASE_URL inherited from the environment."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return CliRunner()


def test_cli_send_listen_with_replay_and_notify(
    runner: CliRunner, db_url: str, client: Client
) -> None:
    channel = fresh_channel()
    sent = runner.invoke(main, ["--database-url", db_url, "send", channel, '{"hello": "world"}'])
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.strip() == "1"
    runner.invoke(main, ["--database-url", db_url, "send", channel, "[1, 2]"])
    listened = runner.invoke(
        main, ["--database-url", db_url, "listen", channel, "--replay-from", "0", "-n", "2"]
    )
    assert listened.exit_code == 0, listened.output
    lines = [json.loads(line) for line in listened.stdout.splitlines()]
    assert [(x["message_id"], x["message"], x["replayed"]) for x in lines] == [
        (1, {"hello": "world"}, True), (2, [1, 2], True)
    ]
    assert f"listening on {channel}" in listened.stderr
    notified = runner.invoke(main, ["--database-url", db_url, "notify", channel, "ping"])
    assert notified.exit_code == 0 and notified.stdout == ""


def test_cli_reports_bad_names_bad_json_and_oversize_payloads(
    runner: CliRunner, db_url: str
) -> None:
    bad = runner.invoke(main, ["--database-url", db_url, "send", "Bad-Name", "{}"])
    assert bad.exit_code == 1 and "(SQLSTATE WF001)" in bad.stderr
    listened = runner.invoke(main, ["--database-url", db_url, "listen", "Bad-Name"])
    assert listened.exit_code == 1 and "(SQLSTATE WF001)" in listened.stderr
    not_json = runner.invoke(main, ["--database-url", db_url, "send", "ok_name", "{nope"])
    assert not_json.exit_code == 2 and "not JSON" in not_json.stderr
    big = runner.invoke(main, ["--database-url", db_url, "notify", "ok_name", "x" * 8000])
    assert big.exit_code == 1 and "(SQLSTATE WF014)" in big.stderr


def cli_command() -> list[str]:
    """Return the installed ``singularity-workflow`` script (else ``python -m``)."""
    script = Path(sys.executable).parent / "singularity-workflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "singularity_workflow"]


@pytest.mark.slow
def test_cli_listen_process_prints_json_lines_and_exits_0_on_sigterm(
    db_url: str, client: Client
) -> None:
    channel = fresh_channel()
    proc = subprocess.Popen(
        [*cli_command(), "listen", channel, "workflow_run_events"],
        env=dict(os.environ, DATABASE_URL=db_url), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert proc.stderr.readline().startswith("listening on")  # LISTEN is in place
        ids = [client.send_with_notify(channel, {"n": n}) for n in range(3)]
        client.notify_only(channel, "just a signal")
        lines = [json.loads(proc.stdout.readline()) for _ in range(4)]
        assert [line.get("message") for line in lines] == [{"n": 0}, {"n": 1}, {"n": 2}, None]
        assert [line["message_id"] for line in lines] == [*ids, None]
        assert lines[3]["payload"] == "just a signal"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


# -- the example ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_follow_events_example_demo_shows_a_run_from_start_to_end(db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "examples/follow_events.py", "--demo"], cwd=REPO,
        env=dict(os.environ, DATABASE_URL=db_url), capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    events = [line.split()[1] for line in lines if line.startswith("event")]
    assert events[0] == "run_started" and events[-1] == "run_completed", done.stdout
    assert events.count("step_completed") == 3
    run_ids = {UUID(line.split()[2]) for line in lines if line.startswith("event")}
    assert len(run_ids) == 1

