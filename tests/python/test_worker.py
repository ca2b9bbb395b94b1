"""Worker: handlers, failures, wake-ups, leases, reconnection, SIGTERM, and the commands.

Workers run in threads of the test process (each with its own connections), except for the
SIGTERM test, which needs a real process to signal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from click.testing import CliRunner

from singularity_workflow import Client, Worker, Workflow, register_handlers, step
from singularity_workflow.cli import main
from tests.fixtures import import_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture
def serve(db_url: str) -> Iterator[Any]:
    """Start Workers in threads (``serve(queues, **options)``); stop them all after the test."""
    started: list[Worker] = []

    def start(queues: list[str], **options: Any) -> Worker:
        options.setdefault("shutdown_grace", 5)
        w = Worker(db_url, queues, **options)
        w.run_in_thread()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(wait_for_tasks=False)
    for w in started:
        assert w.join(10), "a worker did not stop"


def wait_run(client: Client, run_id: UUID, timeout: float = 10) -> dict[str, Any]:
    """Poll the run until it is no longer in progress (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_run_status(run_id).to_dict()
        if run["status"] != "in_progress":
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still in progress after {timeout} s: {run}")
        time.sleep(0.02)


def task_rows(db_url: str, run_id: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(db_url) as conn:
        cur = conn.execute(
            "select step_slug, task_index, status, attempts_count, error_message, worker_id"
            " from workflow.tasks where run_id = %s order by step_slug, task_index",
            [run_id],
        )
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class Handlers(Workflow):
    """Sync, async and map handlers on one queue."""

    slug = "test_worker.handlers"

    @step(execution="distributed", queue="w_basic")
    def numbers(self, input: dict[str, Any]) -> list[int]:
        """Sync: a list to map over."""
        return list(range(int(input["run"]["n"])))

    @step(depends_on=["numbers"], map=True, execution="distributed", queue="w_basic")
    async def double(self, item: int) -> int:
        """Async map: one task per element."""
        await asyncio.sleep(0.01)
        return item * 2

    @step(depends_on=["double"], execution="distributed", queue="w_basic")
    async def total(self, input: dict[str, Any]) -> int:
        """Async single step."""
        return sum(input["double"])


def test_a_worker_runs_sync_async_and_map_handlers(client: Client, serve: Any) -> None:
    client.register_flow(Handlers)
    worker = serve(["w_basic"], concurrency=4)
    run = wait_run(client, client.start_flow(Handlers.slug, {"n": 6}))
    assert run["status"] == "completed"
    assert run["output"] == {"total": 30}
    assert worker.stats.completed == 8


class Failing(Workflow):
    """One step that raises, one that returns something JSON cannot hold."""

    slug = "test_worker.failing"

    @step(execution="distributed", queue="w_fail", max_attempts=1)
    def explode(self, input: dict[str, Any]) -> None:
        """Raise."""
        raise KeyError("missing setting")


class NotJson(Workflow):
    """A step whose output cannot be stored."""

    slug = "test_worker.not_json"

    @step(execution="distributed", queue="w_fail", max_attempts=1)
    def odd(self, input: dict[str, Any]) -> Any:
        """Return a set."""
        return {1, 2, 3}


def test_a_handler_exception_fails_the_task_with_its_traceback(
    client: Client, db_url: str, serve: Any
) -> None:
    client.register_flow(Failing)
    serve(["w_fail"])
    run_id = client.start_flow(Failing.slug, {})
    assert wait_run(client, run_id)["status"] == "failed"
    [task] = task_rows(db_url, run_id)
    assert task["status"] == "failed"
    assert task["error_message"].startswith("KeyError: 'missing setting'")
    assert "Traceback (most recent call last)" in task["error_message"]
    assert "in explode" in task["error_message"]


def test_an_output_that_is_not_json_fails_the_task(
    client: Client, db_url: str, serve: Any
) -> None:
    client.register_flow(NotJson)
    serve(["w_fail"])
    run_id = client.start_flow(NotJson.slug, {})
    assert wait_run(client, run_id)["status"] == "failed"
    [task] = task_rows(db_url, run_id)
    assert "step 'odd' returned a value that is not JSON-serialisable" in task["error_message"]


def test_a_worker_never_claims_a_step_it_has_no_handler_for(
    client: Client, db_url: str, serve: Any
) -> None:
    """It registers the steps it can run; a task of another step waits, no attempt spent."""
    client.register_flow({
        "slug": "test_worker.nobody_home",
        "steps": [{"slug": "ghost", "execution": "distributed", "queue": "w_unknown",
                   "max_attempts": 1}],
    })
    worker = serve(["w_unknown"], poll_interval=0.2)
    run_id = client.start_flow("test_worker.nobody_home", {})
    time.sleep(1.0)  # five polls, and the notification of the start
    [task] = task_rows(db_url, run_id)
    assert (task["status"], task["attempts_count"]) == ("queued", 0)
    assert worker.stats.claimed == 0
    with psycopg.connect(db_url) as conn:
        status = conn.execute("select workflow.get_run_status(%s)", [run_id]).fetchone()[0]  # type: ignore[index]
    assert status["status"] == "in_progress"
    assert [s["waiting_for_worker"] for s in status["steps"]] == [True]
    with psycopg.connect(db_url) as conn:
        handlers = conn.execute(
            "select handlers from workflow.workers where worker_id = %s", [worker.worker_id]
        ).fetchone()[0]  # type: ignore[index]
    assert "test_worker.nobody_home" not in handlers


def test_an_input_too_deep_for_python_fails_its_task_and_the_worker_goes_on(
    client: Client, db_url: str, serve: Any
) -> None:
    """PostgreSQL stores JSON nested deeper than Python can decode; only that task fails."""
    register_handlers("test_worker.deep", {"only": lambda input: "ran"})
    client.register_flow({
        "slug": "test_worker.deep",
        "steps": [{"slug": "only", "execution": "distributed", "queue": "w_deep",
                   "max_attempts": 1}],
    })
    deep = '{"k": ' * 1500 + "1" + "}" * 1500
    with psycopg.connect(db_url, autocommit=True) as conn:
        bad = conn.execute(
            "select workflow.start_flow('test_worker.deep', %s::jsonb)", [deep]
        ).fetchone()[0]  # type: ignore[index]
    good = client.start_flow("test_worker.deep", {"k": 1})
    worker = serve(["w_deep"])
    deadline = time.monotonic() + 10
    with psycopg.connect(db_url, autocommit=True) as conn:  # status only: the input is too deep
        while conn.execute("select status from workflow.runs where run_id = %s",
                           [bad]).fetchone() == ("started",):
            assert time.monotonic() < deadline, "the deep run never ended"
            time.sleep(0.02)
        assert conn.execute("select status from workflow.runs where run_id = %s",
                            [bad]).fetchone() == ("failed",)
    [task] = task_rows(db_url, bad)
    assert "nested too deeply" in task["error_message"]
    assert wait_run(client, good)["status"] == "completed"  # the same worker served the next
    assert worker.join(0.1) is False, "the worker is still running"


def test_handlers_registered_for_a_database_flow_know_its_map_steps(
    client: Client, serve: Any
) -> None:
    client.register_flow({
        "slug": "test_worker.dynamic",
        "steps": [{"slug": "each", "type": "map", "execution": "distributed",
                   "queue": "w_dynamic"}],
    })
    register_handlers("test_worker.dynamic", {"each": lambda item: item + 1})
    serve(["w_dynamic"])
    run = wait_run(client, client.start_flow("test_worker.dynamic", [1, 2]))
    assert run["output"] == {"each": [2, 3]}


class Quick(Workflow):
    """One fast step, for wake-up latency."""

    slug = "test_worker.quick"

    @step(execution="distributed", queue="w_notify")
    def ping(self, input: dict[str, Any]) -> str:
        """Answer at once."""
        return "pong"


def test_an_idle_worker_wakes_on_notify_not_on_its_poll(client: Client, serve: Any) -> None:
    client.register_flow(Quick)
    worker = serve(["w_notify"], poll_interval=30)
    time.sleep(0.5)  # it has made its first (empty) claim and now waits
    assert worker.stats.claimed == 0
    started = time.monotonic()
    run = wait_run(client, client.start_flow(Quick.slug, {}), timeout=10)
    assert run["status"] == "completed"
    assert time.monotonic() - started < 2


class LongLease(Workflow):
    """A step running most of its 2 s timeout: its lease is renewed meanwhile."""

    slug = "test_worker.long_lease"

    @step(execution="distributed", queue="w_lease", timeout=2, max_attempts=1)
    def slow(self, input: dict[str, Any]) -> str:
        """Run for three quarters of the timeout."""
        time.sleep(1.5)
        return "done"


def test_leases_are_renewed_while_a_handler_runs(
    client: Client, db_url: str, serve: Any
) -> None:
    """The lease (the message's visibility) moves forward while the handler runs."""
    client.register_flow(LongLease)
    serve(["w_lease"], poll_interval=30, lease_renew_fraction=0.25)
    run_id = client.start_flow(LongLease.slug, {})
    with psycopg.connect(db_url, autocommit=True) as conn:

        def visible_at() -> Any:
            row = conn.execute("select max(vt) from pgmq.q_w_lease").fetchone()
            return row[0] if row else None

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not task_rows(db_url, run_id):
            time.sleep(0.05)
        while time.monotonic() < deadline and task_rows(db_url, run_id)[0]["status"] != "started":
            time.sleep(0.05)
        first = visible_at()
        time.sleep(1.0)  # two renewals (every 0.5 s)
        later = visible_at()
    assert first is not None and later is not None and later > first
    assert wait_run(client, run_id)["status"] == "completed"
    [task] = task_rows(db_url, run_id)
    assert (task["status"], task["attempts_count"]) == ("completed", 1)


class Doomed(Workflow):
    """A slow step whose task is failed by someone else while it runs."""

    slug = "test_worker.doomed"

    @step(execution="distributed", queue="w_doomed", timeout=1, max_attempts=1)
    def slow(self, input: dict[str, Any]) -> str:
        """Outlive the task."""
        time.sleep(2)
        return "too late"


def test_a_task_whose_lease_is_refused_is_abandoned_and_its_result_dropped(
    client: Client, db_url: str, serve: Any
) -> None:
    client.register_flow(Doomed)
    worker = serve(["w_doomed"], poll_interval=30)
    run_id = client.start_flow(Doomed.slug, {})
    deadline = time.monotonic() + 10
    while task_rows(db_url, run_id)[0]["status"] != "started":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with psycopg.connect(db_url, autocommit=True) as conn:  # e.g. an operator gives up on it
        conn.execute(
            "select workflow.fail_task(task_id, attempts_count, 'given up')"
            " from workflow.tasks where run_id = %s",
            [run_id],
        )
    deadline = time.monotonic() + 10
    while worker.stats.abandoned == 0 or worker.stats.claimed != worker.stats.abandoned:
        assert time.monotonic() < deadline, worker.stats
        time.sleep(0.05)
    time.sleep(2)  # the handler ends; its result must not be sent
    assert (worker.stats.completed, worker.stats.stale, worker.stats.failed) == (0, 0, 0)
    [task] = task_rows(db_url, run_id)
    assert (task["status"], task["error_message"]) == ("failed", "given up")


def test_a_worker_reconnects_after_losing_its_connections(
    client: Client, db_url: str, serve: Any
) -> None:
    client.register_flow(Quick)
    worker = serve(["w_notify"], poll_interval=1)
    time.sleep(0.3)
    with client.connection() as own:
        spared = own.info.backend_pid
    with psycopg.connect(db_url, autocommit=True) as admin:
        killed = admin.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and pid not in (pg_backend_pid(), %s)",
            [spared],
        ).fetchone()
    assert killed is not None and killed[0] >= 2  # the loop's and the listener's
    run = wait_run(client, client.start_flow(Quick.slug, {}), timeout=15)
    assert run["status"] == "completed"
    assert worker.stats.reconnects >= 1


# ---- a real worker process -----------------------------------------------------------------

SIGTERM_MODULE = """
import time
from singularity_workflow import Workflow, step

class SigtermFlow(Workflow):
    slug = "test_worker.sigterm"

    @step(execution="distributed", queue="w_sigterm", timeout=5)
    def one_second(self, input):
        time.sleep(1.0)
        return "finished"
"""


def worker_process(db_url: str, module_dir: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``python -m singularity_workflow worker ...`` importing modules from module_dir."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(module_dir), str(REPO / "python")]))
    return subprocess.Popen(
        [sys.executable, "-m", "singularity_workflow", "--database-url", db_url, "worker", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def load_module(path: Path, name: str, source: str) -> Any:
    """Write ``source`` as module ``name`` in ``path`` and import it here too."""
    (path / f"{name}.py").write_text(textwrap.dedent(source))
    return import_file(path / f"{name}.py")


def test_sigterm_lets_the_in_flight_task_finish_then_exits_0(
    client: Client, db_url: str, tmp_path: Path
) -> None:
    mod = load_module(tmp_path, "sigterm_flows", SIGTERM_MODULE)
    client.register_flow(mod.SigtermFlow)
    proc = worker_process(db_url, tmp_path, "-q", "w_sigterm", "-i", "sigterm_flows")
    try:
        run_id = client.start_flow("test_worker.sigterm", {})
        deadline = time.monotonic() + 15
        while task_rows(db_url, run_id)[0]["status"] != "started":
            assert time.monotonic() < deadline, "the worker never claimed the task"
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "SIGTERM received" in out
    [task] = task_rows(db_url, run_id)
    assert (task["status"], task["attempts_count"]) == ("completed", 1)
    assert client.get_run_status(run_id).output == {"one_second": "finished"}


# ---- the commands, through click's runner ---------------------------------------------------


class CliFlow(Workflow):
    """Two distributed steps, for `run --wait` and `status`."""

    slug = "test_worker.cli"

    @step(execution="distributed", queue="w_cli")
    def first(self, input: dict[str, Any]) -> int:
        """Read the input."""
        return int(input["run"]["n"])

    @step(depends_on=["first"], execution="distributed", queue="w_cli")
    def second(self, input: dict[str, Any]) -> int:
        """Add one."""
        return int(input["first"]) + 1


def test_run_wait_prints_the_output_and_status_prints_the_run(
    client: Client, db_url: str, serve: Any
) -> None:
    client.register_flow(CliFlow)
    serve(["w_cli"])
    runner = CliRunner()
    result = runner.invoke(
        main, ["--database-url", db_url, "run", CliFlow.slug, "--input", '{"n": 41}', "--wait",
               "--timeout", "20"],
    )
    assert result.exit_code == 0, result.output
    assert '"second": 42' in result.stdout
    run_id = result.stderr.split()[1]
    status = runner.invoke(main, ["--database-url", db_url, "status", run_id])
    assert status.exit_code == 0, status.output
    assert '"status": "completed"' in status.stdout
    assert '"completed_steps": 2' in status.stdout


def test_run_without_wait_prints_the_run_id_and_returns(client: Client, db_url: str) -> None:
    client.register_flow(CliFlow)
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "run", CliFlow.slug, "--input", '{"n": 1}']
    )
    assert result.exit_code == 0, result.output
    run = client.get_run_status(UUID(result.stdout.strip()))
    assert run.status == "in_progress"


def test_run_wait_reports_a_failed_run_with_exit_status_1(
    client: Client, db_url: str, serve: Any
) -> None:
    client.register_flow(Failing)
    serve(["w_fail"])
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "run", Failing.slug, "--wait", "--timeout", "20"]
    )
    assert result.exit_code == 1
    assert "failed in step explode" in result.stderr
    assert "KeyError" in result.stderr


def test_status_of_an_unknown_run_is_an_error(db_url: str) -> None:
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "status", "00000000-0000-0000-0000-000000000000"]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_a_worker_in_a_thread_stops_when_asked(db_url: str) -> None:
    w = Worker(db_url, ["w_idle"], poll_interval=30)
    t = w.run_in_thread()
    assert t.is_alive()
    started = time.monotonic()
    w.stop()
    assert w.join(5)
    assert time.monotonic() - started < 2
    assert threading.active_count() < 50
