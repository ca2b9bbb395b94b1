"""The harness of ``make bench-scale``: its delay proxy and its hosts in network namespaces.

The figures of bench/scale.py are only worth something if the harness is what it claims: the
proxy adds the round trip it is given and keeps the bytes in order, and a worker in another
namespace, behind the proxy, drains runs exactly once and leaves nothing behind. These tests
check exactly that on small sizes (seconds); the figures themselves come from the bench.
Namespaces need root: without it the namespace test skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.fixtures import admin_url

SCALE = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_proxy(port: int, delay_ms: float) -> subprocess.Popen[str]:
    """Start the bench's delay proxy on 127.0.0.1:``port`` in front of the test server."""
    info = psycopg.conninfo.conninfo_to_dict(admin_url())
    target = f"{info.get('host') or '127.0.0.1'}:{info.get('port') or 5432}"
    proc = subprocess.Popen(
        [sys.executable, str(SCALE), "proxy", "--listen", "127.0.0.1", "--port", str(port),
         "--target", target, "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert "listening" in json.loads(proc.stdout.readline())
    return proc


def through(port: int) -> str:
    """Return the admin connection string pointed at the proxy instead of the server."""
    info = psycopg.conninfo.conninfo_to_dict(admin_url())
    info.update(host="127.0.0.1", port=str(port))
    return psycopg.conninfo.make_conninfo(**info)


def test_proxy_adds_its_round_trip_and_keeps_the_bytes_in_order() -> None:
    port = free_port()
    proxy = start_proxy(port, delay_ms=40)
    try:
        with psycopg.connect(through(port), autocommit=True) as conn:
            conn.execute("select 1")
            t0 = time.monotonic()
            for _ in range(5):
                conn.execute("select 1").fetchone()
            per_query_ms = (time.monotonic() - t0) / 5 * 1000
            # 5 MB in many chunks: any reordering or loss would change the digest.
            text, digest = conn.execute(
                "select repeat(md5('x'), 160000) as t, md5(repeat(md5('x'), 160000))").fetchone()
        import hashlib

        assert hashlib.md5(text.encode()).hexdigest() == digest
        # One query is one round trip: at least the 40 ms the proxy adds, and not several.
        assert 40 <= per_query_ms < 200, per_query_ms
    finally:
        proxy.terminate()
        proxy.wait(10)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                    reason="network namespaces need root and iproute2")
def test_workers_in_namespaces_drain_everything_once_and_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, str(SCALE), "--database-url", admin_url(), "--workers", "2",
         "--rtts", "2", "--single", "60", "--diamonds", "3", "--chains", "1", "--reps", "1",
         "--out", str(out)],
        check=False, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert list(report["cases"]) == ["local", "2 ms"]
    for case in report["cases"].values():
        assert case["w1"]["tasks"] == 60  # the bench itself raises on a missing or extra task
        assert case["w3"]["tasks"] == 3 * 12
    # Behind 2 ms of round trip a hop costs at least the NOTIFY's way out (half a round trip)
    # and the claim's request and reply (a whole one): 3 ms.
    assert report["cases"]["2 ms"]["hop_ms"]["p50"] >= 3.0
    assert report["leftovers"] == {"namespaces": [], "links": [], "processes": []}
    names = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True,
                           text=True).stdout
    assert "swscale" not in names
