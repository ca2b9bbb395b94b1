"""The notifier: the package's one LISTEN-with-reconnect, and its one back-off policy.

The worker, the messaging Listener and ``run --wait`` are tested through their own behaviour
elsewhere; here the component they share is pinned on its own: what it delivers, that it
reconnects after its backend is killed and says so, and how it backs off while the server is away.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from singularity_workflow._notify import RECONNECT, Backoff, BackoffPolicy, Notifier


def kill_backend(db_url: str, pid: int | None) -> None:
    """Terminate a server process and wait until it is gone."""
    assert pid is not None
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", [pid])
        for _ in range(500):
            row = admin.execute(
                "select count(*) from pg_stat_activity where pid = %s", [pid]
            ).fetchone()
            if row == (0,):
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still alive")


def test_the_reconnect_policy_doubles_from_a_tenth_of_a_second_to_five_and_resets() -> None:
    backoff = Backoff(RECONNECT)
    assert [backoff.next() for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.1
    assert BackoffPolicy(first=1.0, cap=30.0).after(16.0) == 30.0


def test_a_notification_committed_after_open_is_received(db_url: str) -> None:
    with Notifier(lambda: psycopg.connect(db_url, autocommit=True), ["nt_a", "nt_b"]) as n:
        with psycopg.connect(db_url, autocommit=True) as sender:
            sender.execute("select pg_notify('nt_b', 'hello')")
        got = n.receive(5.0, stop_after=1)
    assert [(x.channel, x.payload) for x in got] == [("nt_b", "hello")]
    assert n.closed and n.connection is None


def test_a_killed_connection_is_reopened_relistened_and_reported(db_url: str) -> None:
    seen: list[int] = []
    n = Notifier(lambda: psycopg.connect(db_url, autocommit=True), ["nt_c"],
                 on_reconnect=lambda conn: seen.append(conn.info.backend_pid))
    with n:
        first = n.backend_pid
        kill_backend(db_url, first)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            assert n.receive(0.2) == []
        assert n.reconnects == 1 and seen == [n.backend_pid] and n.backend_pid != first
        with psycopg.connect(db_url, autocommit=True) as sender:
            sender.execute("select pg_notify('nt_c', 'again')")
        assert [x.payload for x in n.receive(5.0, stop_after=1)] == ["again"]


def test_while_the_server_is_away_attempts_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[float] = []

    def unreachable() -> Any:
        attempts.append(time.monotonic())
        raise psycopg.OperationalError("connection refused")

    n = Notifier(unreachable, ["nt_d"], policy=BackoffPolicy(first=0.2, cap=0.4))
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert n.receive(0.05) == []
    # The first attempt is immediate, then 0.2 s, then 0.4 s apart (the cap): about five in
    # 1.5 s, where retrying on every 50 ms receive would make thirty.
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert 3 <= len(attempts) <= 6, attempts
    assert gaps[0] >= 0.19 and all(g >= 0.39 for g in gaps[1:]), gaps
    assert n.reconnects == 0
