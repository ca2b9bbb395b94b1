"""Chaos, long variants (``make chaos``): the scenarios of tests/python/test_chaos.py at size.

* 50 SIGKILLs of random workers during 10,000 tasks over map and diamond flows;
* 10 terminations of every backend mid-load, with workers and a waiting ``execute``; with
  ``SW_CHAOS_RESTART=1`` (root on a local Debian cluster) also 2 restarts of PostgreSQL itself,
  which is opt-in because it ends every other session on the server, not just this test's;
* a locked run and a long transaction during 2,000 other tasks;
* handlers blocking for 15 s (five 3 s leases).

Each prints a ``CHAOS`` line with its figures (run with ``-s`` to see them; ``make chaos`` does).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.chaos._scenarios import blocking_handlers, kill_storm, lock_holders, outages

pytestmark = pytest.mark.timeout(900)


def report(name: str, figures: object) -> None:
    """Print one machine-readable line of figures."""
    print(f"CHAOS {name} " + json.dumps(asdict(figures), default=str))  # type: ignore[call-overload]


def test_fifty_kills_during_ten_thousand_tasks(db_url: str, tmp_path: Path) -> None:
    figures = kill_storm(db_url, tmp_path, tasks=10_000, kills=50, workers=4, rng_seed=7, timeout=600)
    report("kills", figures)
    assert figures.audit.lost == 0 and figures.audit.double_completions == 0
    assert figures.orphans >= figures.kills // 2


def test_backend_terminations_and_restarts(db_url: str, tmp_path: Path) -> None:
    restarts = 2 if os.environ.get("SW_CHAOS_RESTART") == "1" else 0
    if restarts and os.getuid() != 0:
        pytest.skip("SW_CHAOS_RESTART=1 needs root to run pg_ctlcluster")
    figures = outages(db_url, tmp_path, tasks=5000, terminations=10, restarts=restarts,
                      timeout=600)
    report("outages", figures)


def test_locked_run_during_two_thousand_tasks(db_url: str, tmp_path: Path) -> None:
    figures = lock_holders(db_url, tmp_path, tasks=2000, in_flight=False, timeout=300)
    report("locks", figures)


def test_handlers_blocking_for_five_leases(db_url: str, tmp_path: Path) -> None:
    figures = blocking_handlers(db_url, tmp_path, seconds=15.0)
    report("blocking", figures)
