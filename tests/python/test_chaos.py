"""Chaos, short variants (inside ``make test``; ``make chaos`` runs the long ones in tests/chaos).

Real worker processes, real SIGKILLs, real backend terminations and real lock holders, each
scenario bounded to about 20 s; the scenarios and their checks are in ``tests/chaos`` (read
``_harness.py`` for how "no task lost, none completed twice, every extra attempt explained by a
kill" is established from the tables). The figures are printed for ``pytest -s``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos._scenarios import blocking_handlers, kill_storm, lock_holders, outages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def test_chaos_sigkill_workers_during_a_load_loses_nothing(db_url: str, tmp_path: Path) -> None:
    figures = kill_storm(db_url, tmp_path, tasks=2000, kills=10, workers=3, timeout=60)
    print(f"kills={figures.kills} orphans={figures.orphans} {figures.audit}"
          f" in {figures.seconds:.1f} s")
    assert figures.audit.lost == 0 and figures.audit.double_completions == 0
    # Most kills must have hit a worker holding tasks, or the test proved little.
    assert figures.orphans >= figures.kills // 2, figures


def test_chaos_terminating_every_backend_mid_load_is_survived(db_url: str, tmp_path: Path) -> None:
    figures = outages(db_url, tmp_path, tasks=1000, terminations=3, timeout=60)
    print(figures)
    assert figures.backends_ended >= 3 * 3  # at least the three workers' loop connections


# In the in-flight case the worker's completion of the held run's task meets the lock: the
# flush waits at most its lock timeout, sets that result aside and keeps serving the others.
@pytest.mark.parametrize(
    "in_flight", [False, True], ids=["queued", "in_flight"]
)
def test_chaos_a_locked_run_and_a_long_transaction_block_nothing_else(
    db_url: str, tmp_path: Path, in_flight: bool
) -> None:
    figures = lock_holders(db_url, tmp_path, tasks=300, in_flight=in_flight, timeout=30)
    print(figures)
    assert figures.shutdown_seconds < 15


def test_chaos_handlers_blocking_longer_than_the_lease_keep_it(db_url: str, tmp_path: Path) -> None:
    figures = blocking_handlers(db_url, tmp_path, seconds=7.0)
    print(figures)
