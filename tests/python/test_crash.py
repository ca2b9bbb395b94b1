"""A worker process killed with SIGKILL while holding tasks: nothing is lost or counted twice.

Two real worker processes (``python -m singularity_workflow worker``) serve one queue. The first
claims every task of a map step and hangs in its handlers; it is killed with SIGKILL, so it
reports nothing and its connections just vanish. Once the leases (2 s) lapse, the second worker
claims the tasks again as their second attempt and completes them; the run finishes, each task
is completed exactly once, and the rescuer's own count of accepted completions matches.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from singularity_workflow import Client
from tests.fixtures import import_file

REPO = Path(__file__).resolve().parents[2]
ITEMS = 4

FLOWS = """
import os
import time
from singularity_workflow import Workflow, step

class CrashFlow(Workflow):
    slug = "test_crash.flow"

    @step(map=True, execution="distributed", queue="crash_q", timeout=2, max_attempts=3)
    def work(self, item):
        time.sleep(float(os.environ["CRASH_SLEEP"]))
        return item * 10

    @step(depends_on=["work"], execution="distributed", queue="crash_q", timeout=2)
    def total(self, input):
        return sum(input["work"])
"""


def start_worker(
    db_url: str, module_dir: Path, worker_id: str, sleep: float
) -> subprocess.Popen[str]:
    """Start a worker process on crash_q whose map handlers sleep ``sleep`` seconds."""
    env = dict(
        os.environ,
        CRASH_SLEEP=str(sleep),
        PYTHONPATH=os.pathsep.join([str(module_dir), str(REPO / "python")]),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "singularity_workflow", "--database-url", db_url, "worker",
         "-q", "crash_q", "-i", "crash_flows", "--worker-id", worker_id,
         "--concurrency", str(ITEMS), "--poll-interval", "0.5", "--shutdown-grace", "5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def tasks(conn: psycopg.Connection[Any], run_id: Any) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select step_slug, task_index, status, attempts_count, worker_id, output"
        " from workflow.tasks where run_id = %s order by step_slug, task_index",
        [run_id],
    ).fetchall()


@pytest.mark.slow
def test_tasks_of_a_killed_worker_are_completed_once_by_another(
    db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "crash_flows.py").write_text(textwrap.dedent(FLOWS))
    client = Client(db_url)
    crash_flows = import_file(tmp_path / "crash_flows.py")
    client.register_flow(crash_flows.CrashFlow)
    run_id = client.start_flow("test_crash.flow", list(range(ITEMS)))

    victim = start_worker(db_url, tmp_path, "victim", sleep=60)
    rescuer: subprocess.Popen[str] | None = None
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            deadline = time.monotonic() + 20
            while sum(1 for t in tasks(conn, run_id) if t[2] == "started") < ITEMS:
                assert time.monotonic() < deadline, "the first worker never claimed the tasks"
                assert victim.poll() is None, victim.communicate()[0]
                time.sleep(0.05)
            assert {t[4] for t in tasks(conn, run_id)} == {"victim"}

            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed_at = time.monotonic()
            rescuer = start_worker(db_url, tmp_path, "rescuer", sleep=0.05)

            run = None
            deadline = time.monotonic() + 30
            while run is None or run.status == "in_progress":
                assert time.monotonic() < deadline, f"the run did not finish: {run}"
                assert rescuer.poll() is None, rescuer.communicate()[0]
                time.sleep(0.1)
                run = client.get_run_status(run_id)
            # Not before the leases lapsed (2 s at most after the last renewal).
            assert time.monotonic() - killed_at > 0.5
            assert run.status == "completed"
            assert run.output == {"total": sum(i * 10 for i in range(ITEMS))}

            rows = tasks(conn, run_id)
            work = [r for r in rows if r[0] == "work"]
            assert [(r[1], r[2], r[3], r[4], r[5]) for r in work] == [
                (i, "completed", 2, "rescuer", i * 10) for i in range(ITEMS)
            ]
            [total] = [r for r in rows if r[0] == "total"]
            assert (total[2], total[3], total[4]) == ("completed", 1, "rescuer")
            # No message of the run is left in the queue.
            left = conn.execute("select count(*) from pgmq.q_crash_q").fetchone()
            assert left == (0,)

        rescuer.send_signal(signal.SIGTERM)
        out, _ = rescuer.communicate(timeout=15)
        assert rescuer.returncode == 0, out
        # The rescuer's own tally: every completion it sent was accepted, none stale.
        stopped = re.search(r"stopped \((\d+) completed, (\d+) failed, (\d+) stale\)", out)
        assert stopped is not None, out
        assert stopped.groups() == (str(ITEMS + 1), "0", "0")
    finally:
        for proc in (victim, rescuer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        client.close()
