"""Nothing stranded, nothing burned: real processes that lack handlers, die, or are interrupted.

* a worker lacking a handler beside one that has it: every run completes, no attempt burned;
* SIGKILL of an ``execute()`` process with a local step: the engine's own calls fail the run
  (owner gone) once the heartbeat timeout passed, and nothing of it stays claimable;
* SIGINT of such a process: the run fails at once, naming the deregistered owner;
* a run past its deadline with no worker alive: ``get_run_status`` itself cancels it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from singularity_workflow import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[2]

FLOWS = '''
import time
from singularity_workflow import Workflow, step


class Served(Workflow):
    slug = "owners.served"

    @step(execution="distributed", queue="owners_q", max_attempts=1)
    def work(self, input):
        return {"by": "the worker that has the handler"}


class Stuck(Workflow):
    slug = "owners.stuck"

    @step
    def hang(self, input):  # a local step: only the executing process runs it
        print("STARTED", flush=True)
        time.sleep(600)
        return 1
'''

# A worker with no handler for owners.served, serving the same queue.
OTHER = '''
from singularity_workflow import Workflow, step


class Unrelated(Workflow):
    slug = "owners.unrelated"

    @step(execution="distributed", queue="owners_q")
    def other(self, input):
        return 0
'''

EXECUTE = '''
import sys
from singularity_workflow import Client, execute
from owner_flows import Stuck

execute(Stuck, {}, client=Client(sys.argv[1]), timeout=120, heartbeat_timeout=2)
'''


def _env(directory: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(directory), str(REPO / "python"), str(REPO)])
    return env


def _write(directory: Path) -> None:
    (directory / "owner_flows.py").write_text(textwrap.dedent(FLOWS))
    (directory / "other_flows.py").write_text(textwrap.dedent(OTHER))
    (directory / "run_execute.py").write_text(textwrap.dedent(EXECUTE))


def _worker(db_url: str, directory: Path, module: str, worker_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "singularity_workflow", "worker", "--database-url", db_url,
         "-q", "owners_q", "-i", module, "--worker-id", worker_id, "--poll-interval", "0.2",
         "--shutdown-grace", "2"],
        cwd=directory, env=_env(directory), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    out, _ = proc.communicate()
    return out or ""


def _alive(db_url: str, worker_id: str, deadline: float) -> None:
    """Wait until ``worker_id`` registered itself."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("select 1 from workflow.workers where worker_id = %s",
                            [worker_id]).fetchone():
                return
            time.sleep(0.1)
    raise AssertionError(f"worker {worker_id} never registered")


def test_a_worker_lacking_a_handler_beside_one_that_has_it_burns_nothing(
    db_url: str, tmp_path: Path
) -> None:
    _write(tmp_path)
    lacking = _worker(db_url, tmp_path, "other_flows", "lacking")
    having = None
    try:
        _alive(db_url, "lacking", time.monotonic() + 20)
        # Runs first, while only the worker without the handler is up: it must leave them.
        sys.path.insert(0, str(tmp_path))
        try:
            from owner_flows import Served  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(tmp_path))
        with Client(db_url) as client:
            client.register_flow(Served)
            runs = client.start_flows(Served.slug, [{"i": i} for i in range(20)])
            time.sleep(1.0)  # five polls of the lacking worker
            having = _worker(db_url, tmp_path, "owner_flows", "having")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                states = {client.get_run_status(r).status for r in runs}
                if states == {"completed"}:
                    break
                time.sleep(0.2)
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                "select status, attempts_count, worker_id from workflow.tasks"
                " where run_id = any(%s)", [runs]).fetchall()
    finally:
        out = _stop(lacking) + (_stop(having) if having is not None else "")
    assert states == {"completed"}, out[-3000:]
    assert len(rows) == 20
    assert {(s, a, w) for s, a, w in rows} == {("completed", 1, "having")}, out[-3000:]


def _start_execute(db_url: str, directory: Path) -> tuple[subprocess.Popen[str], UUID]:
    """Start a process executing owners.stuck; return it once its local step is running."""
    _write(directory)
    proc = subprocess.Popen([sys.executable, "run_execute.py", db_url], cwd=directory,
                            env=_env(directory), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # STARTED, printed by the handler
    assert line.strip() == "STARTED", line + proc.stdout.read()[-3000:]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select run_id from workflow.runs where flow_slug = 'owners.stuck'"
                           " and status = 'started'").fetchone()
    assert row is not None
    return proc, row[0]


def _wait_failed(client: Client, run_id: UUID, within: float) -> Any:
    """Poll get_run_status (an engine call: it sweeps) until the run ended; return the status."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status.status != "in_progress":
            return status
        time.sleep(0.2)
    return client.get_run_status(run_id)


def _nothing_claimable(db_url: str, run_id: UUID) -> None:
    with psycopg.connect(db_url) as conn:
        live = conn.execute(
            "select count(*) from workflow.tasks where run_id = %s"
            " and status in ('queued', 'started')", [run_id]).fetchone()
        messages = conn.execute(
            "select count(*) from pgmq.q_local where (message ->> 'run_id')::uuid = %s",
            [run_id]).fetchone()
    assert live == (0,) and messages == (0,)


def test_sigkill_of_an_execute_process_fails_its_run_within_the_heartbeat_timeout(
    db_url: str, tmp_path: Path
) -> None:
    proc, run_id = _start_execute(db_url, tmp_path)
    proc.kill()
    proc.wait(10)
    killed = time.monotonic()
    with Client(db_url) as client:
        status = _wait_failed(client, run_id, 2 + 5)
    assert time.monotonic() - killed <= 2 + 5
    assert status.status == "failed"
    assert status.failed_step == "hang"
    assert "is gone (no heartbeat since" in (status.error or ""), status.error
    _nothing_claimable(db_url, run_id)


def test_sigint_of_an_execute_process_fails_its_run_at_once(
    db_url: str, tmp_path: Path
) -> None:
    proc, run_id = _start_execute(db_url, tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) != 0
    interrupted = time.monotonic()
    with Client(db_url) as client:
        status = _wait_failed(client, run_id, 2)
    assert time.monotonic() - interrupted <= 2
    assert status.status == "failed"
    assert "is gone (deregistered)" in (status.error or ""), status.error
    _nothing_claimable(db_url, run_id)


def test_a_deadline_passes_with_no_worker_alive_and_the_engine_cancels_the_run(
    db_url: str,
) -> None:
    client = Client(db_url)
    client.register_flow({"slug": "owners.unserved", "steps": [
        {"slug": "nobody", "execution": "distributed", "queue": "owners_nobody"}]})
    run_id = client.start_flow("owners.unserved", {}, timeout_seconds=1)
    time.sleep(2.2)  # past the deadline and the sweep's one-second throttle
    status = client.get_run_status(run_id)
    assert status.state == "cancelled"
    assert status.error == "deadline exceeded"
    client.close()


flaky_calls: list[int] = []


class FlakyLocal:
    """A list-form flow whose local step fails on its first run only."""

    __workflow_slug__ = "owners.flaky_local"

    @staticmethod
    def __workflow_steps__() -> list[Any]:
        return [("first", FlakyLocal.first, {"max_attempts": 1})]

    @staticmethod
    def first(input: Any) -> str:
        """Fail the first time."""
        flaky_calls.append(1)
        if len(flaky_calls) == 1:
            raise RuntimeError("transient")
        return "ok"


def test_a_retry_of_a_local_flow_is_refused_without_an_owner_and_executed_by_execute_retry(
    db_url: str,
) -> None:
    from singularity_workflow import (
        LocalStepsNeedOwner,
        RunFailed,
        execute,
        execute_retry,
        retry_failed_workflow,
    )

    flaky_calls.clear()
    with Client(db_url) as client:
        with pytest.raises(RunFailed) as caught:
            execute(FlakyLocal, {}, client=client, timeout=20)
        failed = caught.value.run_id
        with pytest.raises(LocalStepsNeedOwner):
            retry_failed_workflow(failed, client=client)
        result = execute_retry(failed, FlakyLocal, client=client, timeout=20)
        assert result.output == {"first": "ok"}
        status = client.get_run_status(result.run_id)
        assert (status.status, status.retry_of) == ("completed", failed)
