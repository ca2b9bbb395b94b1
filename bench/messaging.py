"""Benchmark messaging: notification latency and message throughput, through the real listener.

Why: the promise of ``send_with_notify`` + ``listen`` is real-time delivery with persistence; the
target is a median under 2 ms from the sender's commit to the listener having the notification
in hand. This measures that end to end, through the package's own ``Listener`` (dedicated
connection, de-duplication, cursor), with sender and listener in separate processes.

What it does, in a throwaway database it creates and drops:

1. **Latency.** A listener process iterates ``listen(channel)``; this process sends ``--messages``
   messages with ``send_with_notify``, one at a time: it sends the next only after the listener
   reported the previous one (through a pipe), so no message queues behind another. Timestamps
   come from CLOCK_MONOTONIC, which is one clock for all processes of a machine. Reported:
   *call -> receipt* (from just before the ``send_with_notify`` call to the listener's receipt: an
   upper bound of commit -> receipt, as the commit happens inside the call) and *return ->
   receipt* (from the call's return; can be negative, as the notification may beat the reply),
   the send call itself, the same with the sender's ``synchronous_commit = off`` (the share of
   the commit's disk flush), and the same for a bare psycopg ``select pg_notify()`` + ``notifies()``
   pair, the floor any listener could reach on this server.
2. **Throughput.** ``--senders`` processes (one connection each) send ``--per-sender`` messages as
   fast as they can on one shared channel while a listener receives them all; reported: messages
   sent per second (wall time of the sending), and how long after the last send the listener had
   every message.

Results: a table on stdout and ``build/bench/messaging.json`` with the machine and server facts.
``--quick`` is a few-second version for a smoke test. The server comes from ``--database-url`` or
``DATABASE_URL`` (an admin connection that may create databases).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from singularity_workflow import Client, install, listen

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_FILE = REPO_ROOT / "build" / "bench" / "messaging.json"
DEFAULT_URL = "postgresql://root@127.0.0.1:5432/postgres"
WARMUP = 100  # messages sent before measuring (connections warm, statements prepared)
CHANNEL = "bench_latency"


def now_ns() -> int:
    """Return CLOCK_MONOTONIC in nanoseconds: comparable between processes of one machine."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create a database with the schema installed; yield its URL; drop it afterwards."""
    name = f"sw_bench_msg_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = make_conninfo(admin_url, dbname=name)
    try:
        install(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


# --- latency -------------------------------------------------------------------------------------


def latency_listener(url: str, raw: bool, total: int, pipe: Pipe) -> None:
    """Receive ``total`` notifications; after each, send (id, receipt time) back on ``pipe``."""
    if raw:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute(sql.SQL("listen {}").format(sql.Identifier(CHANNEL)))
        pipe.send("ready")
        received = 0
        while received < total:
            for note in conn.notifies(stop_after=1):
                pipe.send((int(note.payload), now_ns()))
                received += 1
        conn.close()
        return
    with listen(CHANNEL, client=Client(url)) as listener:
        pipe.send("ready")
        for _ in range(total):
            item = listener.get()
            assert item is not None and item.message_id is not None
            pipe.send((item.message_id, now_ns()))


def measure_latency(url: str, count: int, raw: bool, sync_off: bool = False) -> dict[str, Any]:
    """Send ``count`` (+ warm-up) messages one at a time; return latency percentiles in ms.

    ``sync_off``: the sender commits without waiting for the WAL flush, which separates the
    disk's share of the latency from the rest.
    """
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    total = WARMUP + count
    proc = ctx.Process(target=latency_listener, args=(url, raw, total, theirs))
    proc.start()
    theirs.close()  # the child's end: if the child dies, recv() raises EOFError, never hangs
    assert ours.recv() == "ready"
    call_to_receipt: list[float] = []
    return_to_receipt: list[float] = []
    call: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        if sync_off:
            conn.execute("set synchronous_commit = off")
        client = Client(conn)
        for n in range(total):
            started = now_ns()
            if raw:
                conn.execute("select pg_notify(%s, %s)", [CHANNEL, str(n)])
                message_id = n
            else:
                message_id = client.send_with_notify(CHANNEL, {"n": n})
            returned = now_ns()
            got_id, received = ours.recv()
            assert got_id == message_id, (got_id, message_id)
            if n >= WARMUP:
                call_to_receipt.append((received - started) / 1e6)
                return_to_receipt.append((received - returned) / 1e6)
                call.append((returned - started) / 1e6)
    proc.join(timeout=30)
    return {
        "messages": count,
        "call_to_receipt_ms": percentiles(call_to_receipt),
        "return_to_receipt_ms": percentiles(return_to_receipt),
        "send_call_ms": percentiles(call),
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """Return p50, p95, p99 and max of ``values``, rounded to microseconds."""
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": round(statistics.median(ordered), 3), "p95": at(0.95), "p99": at(0.99),
            "max": round(ordered[-1], 3)}


# --- throughput ----------------------------------------------------------------------------------


def throughput_sender(
    url: str, channel: str, count: int, sync_off: bool, go: Any, out: Pipe
) -> None:
    """Wait for ``go``, send ``count`` messages as fast as possible, report (start, end) times."""
    with psycopg.connect(url, autocommit=True) as conn:
        if sync_off:
            conn.execute("set synchronous_commit = off")
        client = Client(conn)
        client.send_with_notify(channel, {"warm": True})  # connect, create the queue, warm up
        for _ in range(5):
            client.send_with_notify(channel, {"warm": True})
        out.send("ready")
        go.wait()
        started = now_ns()
        for n in range(count):
            client.send_with_notify(channel, {"n": n, "pad": "x" * 64})
        out.send((started, now_ns()))


def throughput_listener(url: str, channel: str, expected: int, out: Pipe) -> None:
    """Count notifications until ``expected`` arrived; report when the last one did."""
    with listen(channel, client=Client(url)) as listener:
        out.send("ready")
        received = 0
        while received < expected:
            item = listener.get(timeout=60)
            if item is None:
                break
            if item.message_id is not None:
                received += 1
        out.send((received, now_ns()))


def measure_throughput(
    url: str, senders: int, per_sender: int, sync_off: bool = False
) -> dict[str, Any]:
    """Run ``senders`` processes sending on one channel with a listener; return rates.

    ``sync_off``: the senders commit with ``synchronous_commit = off`` (no wait for the WAL
    flush), which shows what the functions cost apart from the disk.
    """
    ctx = mp.get_context("spawn")
    channel = "bench_throughput_async" if sync_off else "bench_throughput"
    Client(url).send_with_notify(channel, {"create": True})  # the queue exists before the race
    go = ctx.Event()
    pipes: list[Pipe] = []
    procs = []
    # Each sender sends 6 warm-up messages after the listener started, then its share.
    expected = senders * (per_sender + 6)
    ours, theirs = ctx.Pipe()
    listener = ctx.Process(target=throughput_listener, args=(url, channel, expected, theirs))
    listener.start()
    theirs.close()
    assert ours.recv() == "ready"
    for _ in range(senders):
        mine, child = ctx.Pipe()
        proc = ctx.Process(
            target=throughput_sender, args=(url, channel, per_sender, sync_off, go, child)
        )
        proc.start()
        child.close()
        pipes.append(mine)
        procs.append(proc)
    for pipe in pipes:
        assert pipe.recv() == "ready"
    go.set()
    spans = [pipe.recv() for pipe in pipes]
    received, last_receipt = ours.recv()
    for proc in [*procs, listener]:
        proc.join(timeout=30)
    start = min(s for s, _ in spans)
    end = max(e for _, e in spans)
    wall = (end - start) / 1e9
    sent = senders * per_sender
    return {
        "synchronous_commit": "off" if sync_off else "on",
        "senders": senders,
        "messages": sent,
        "seconds": round(wall, 3),
        "sent_per_second": round(sent / wall),
        "listener_received": received,
        "listener_expected": expected,
        "listener_lag_after_last_send_ms": round((last_receipt - end) / 1e6, 1),
    }


# --- facts and report ----------------------------------------------------------------------------


def facts(url: str) -> dict[str, Any]:
    """Return the machine and server facts the numbers depend on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(url, autocommit=True) as conn:
        server = {
            name: conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()
            for name in ("server_version", "synchronous_commit", "fsync", "max_connections")
        }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "server": {k: v[0] if v else None for k, v in server.items()},
    }


def main() -> int:
    """Parse arguments, run both measurements, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--messages", type=int, default=2000, help="latency samples")
    parser.add_argument("--senders", type=int, default=4, help="throughput sender processes")
    parser.add_argument("--per-sender", type=int, default=5000, help="messages per sender")
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.per_sender = 200, 500
    with throwaway_database(args.database_url) as url:
        result: dict[str, Any] = {"facts": facts(url)}
        result["latency_listener"] = measure_latency(url, args.messages, raw=False)
        result["latency_listener_sync_off"] = measure_latency(
            url, args.messages, raw=False, sync_off=True
        )
        result["latency_bare_psycopg"] = measure_latency(url, args.messages, raw=True)
        result["throughput"] = measure_throughput(url, args.senders, args.per_sender)
        result["throughput_sync_off"] = measure_throughput(
            url, args.senders, args.per_sender, sync_off=True
        )
    OUT_FILE.parent.mkdir(parents=True, exist_ok=True)
    OUT_FILE.write_text(json.dumps(result, indent=2, default=str) + "\n")

    f = result["facts"]
    print(f"machine: {f['cpu']} x{f['cores']}, {f['platform']}, Python {f['python']},"
          f" psycopg {f['psycopg']}, load {f['load_average_at_start'][0]:.2f}")
    print(f"server: PostgreSQL {f['server']['server_version']}, synchronous_commit="
          f"{f['server']['synchronous_commit']}, fsync={f['server']['fsync']}")
    print(f"\nlatency over {args.messages} messages, one at a time (ms):")
    print(f"  {'':38} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    rows = [
        ("send_with_notify call -> listener", result["latency_listener"]["call_to_receipt_ms"]),
        ("send_with_notify return -> listener", result["latency_listener"]["return_to_receipt_ms"]),
        ("send_with_notify call duration", result["latency_listener"]["send_call_ms"]),
        ("same, synchronous_commit=off: call ->",
         result["latency_listener_sync_off"]["call_to_receipt_ms"]),
        ("bare pg_notify call -> notifies()", result["latency_bare_psycopg"]["call_to_receipt_ms"]),
    ]
    for label, p in rows:
        print(f"  {label:38} {p['p50']:8.3f} {p['p95']:8.3f} {p['p99']:8.3f} {p['max']:8.3f}")
    for key in ("throughput", "throughput_sync_off"):
        t = result[key]
        print(f"\nthroughput, synchronous_commit={t['synchronous_commit']}: {t['senders']} sender"
              f" processes, {t['messages']} messages on one channel: {t['sent_per_second']}"
              f" messages/s ({t['seconds']} s); listener received"
              f" {t['listener_received']}/{t['listener_expected']}, the last one"
              f" {t['listener_lag_after_last_send_ms']} ms after the last send returned")
    p50 = result["latency_listener"]["call_to_receipt_ms"]["p50"]
    print(f"\ntarget p50 < 2 ms (call -> listener): {'met' if p50 < 2 else 'NOT met'} ({p50} ms)")
    print(f"wrote {OUT_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
