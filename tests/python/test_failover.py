"""Failover under load (bench/failover.py at a small size): the promises it checks hold.

A primary with a synchronous streaming replica, both made by the script in a temporary
directory on free ports; SQL drivers, a Python Worker, a ``wait_for_run`` waiter and an
``execute()`` caller all use one multi-host connection string. The primary is killed
(``pg_ctl stop -m immediate``) with about a third of the runs done, the replica promoted. The
script checks, and this test asserts on its report: every run completed, no acknowledged
completion lost, none acknowledged twice, the waiter and ``execute()`` finished across the
failover, the worker served runs started after the promotion, nothing left running or on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FAILOVER = Path(__file__).resolve().parents[2] / "bench" / "failover.py"
BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.mark.skipif(os.geteuid() != 0 or not (BIN / "initdb").exists()
                    or shutil.which("runuser") is None,
                    reason="needs root (initdb runs as postgres) and PostgreSQL 15's binaries")
def test_kill_the_primary_under_load_loses_no_acknowledged_completion(tmp_path: Path) -> None:
    out = tmp_path / "failover.json"
    done = subprocess.run(
        [sys.executable, str(FAILOVER), "--sync", "on", "--runs", "200", "--out", str(out)],
        check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (found,) = json.loads(out.read_text())
    assert found["replication"] == ["sync"]
    assert found["runs_completed"] == 201 and found["runs_failed"] == 0
    assert found["acked_completions"] > 0 and found["completed_before_kill"] > 0
    assert found["lost_acked_completions"] == 0 and found["acked_twice"] == 0
    assert found["waiter"]["status"] == "completed"
    assert found["execute"]["status"] == "completed"
    # Runs only the worker serves, started after the promotion: it reached the new primary.
    assert found["worker_only_runs_completed_after_promotion"] == 50
    assert found["left_running"] == [] and not found["dir_left"] and found["problems"] == []
