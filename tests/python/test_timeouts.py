"""A step's ``timeout`` bounds each attempt; deterministic failures spend no further attempts.

* a sync handler past its timeout: the attempt fails with StepTimeout and is retried by policy;
  its thread is written off and replaced (the worker keeps its concurrency);
* an async handler past its timeout is cancelled;
* more stuck threads than ``max_written_off``: the worker process exits with status 75;
* ``NonRetryableError`` and an output that cannot be serialised fail the task at once.
"""

from __future__ import annotations

import asyncio
import os
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

from singularity_workflow import Client, NonRetryableError, Worker, Workflow, step
from singularity_workflow.worker import EXIT_STUCK_HANDLERS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture
def serve(db_url: str) -> Iterator[Any]:
    started: list[Worker] = []

    def start(queues: list[str], **options: Any) -> Worker:
        options.setdefault("shutdown_grace", 1)
        w = Worker(db_url, queues, poll_interval=0.2, **options)
        w.run_in_thread()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(wait_for_tasks=False)
    for w in started:
        w.join(10)


def wait_run(client: Client, run_id: UUID, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status.status != "in_progress":
            return status
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still in progress after {timeout} s")


def tasks(db_url: str, run_id: UUID) -> list[tuple[str, int, str | None]]:
    with psycopg.connect(db_url) as conn:
        return [(s, a, e) for s, a, e in conn.execute(
            "select status, attempts_count, error_message from workflow.tasks where run_id = %s",
            [run_id]).fetchall()]


release = threading.Event()
calls: list[int] = []


class SlowOnce(Workflow):
    """Stuck on its first attempt, quick on the second."""

    slug = "timeouts.slow_once"

    @step(execution="distributed", queue="to_sync", timeout=1, max_attempts=2, base_delay=0)
    def work(self, input: dict[str, Any]) -> str:
        """Block the first time."""
        calls.append(1)
        if len(calls) == 1:
            release.wait(30)  # stuck far past the 1 s timeout
            return "too late"
        return "second attempt"


def test_a_sync_handler_past_its_timeout_fails_the_attempt_and_its_thread_is_replaced(
    client: Client, db_url: str, serve: Any
) -> None:
    calls.clear()
    release.clear()
    client.register_flow(SlowOnce)
    worker = serve(["to_sync"], concurrency=1)
    try:
        run_id = client.start_flow(SlowOnce.slug, {})
        status = wait_run(client, run_id)
    finally:
        release.set()
    # concurrency 1 and the first thread still stuck: the retry ran on a replacement thread.
    assert status.status == "completed", status
    assert status.output == {"work": "second attempt"}
    [(state, attempts, _)] = tasks(db_url, run_id)
    assert (state, attempts) == ("completed", 2)
    assert worker.stats is not None
    assert (worker.stats.timed_out, worker.stats.written_off) == (1, 1)


cancelled = threading.Event()


class AsyncHang(Workflow):
    """An async step that never returns by itself."""

    slug = "timeouts.async_hang"

    @step(execution="distributed", queue="to_async", timeout=1, max_attempts=1)
    async def work(self, input: dict[str, Any]) -> str:
        """Sleep far past the timeout; note the cancellation."""
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"


def test_an_async_handler_past_its_timeout_is_cancelled(
    client: Client, db_url: str, serve: Any
) -> None:
    cancelled.clear()
    client.register_flow(AsyncHang)
    started = time.monotonic()
    serve(["to_async"])
    run_id = client.start_flow(AsyncHang.slug, {})
    status = wait_run(client, run_id)
    assert time.monotonic() - started < 5
    assert status.status == "failed"
    assert status.error is not None and "StepTimeout" in status.error
    assert cancelled.wait(2)
    [(state, attempts, _)] = tasks(db_url, run_id)
    assert (state, attempts) == ("failed", 1)


STUCK = '''
import sys, threading
from singularity_workflow import Worker, Workflow, step


class Stuck(Workflow):
    slug = "timeouts.stuck"

    @step(execution="distributed", queue="to_stuck", timeout=1, max_attempts=1)
    def hang(self, input):
        threading.Event().wait(600)


Worker(sys.argv[1], ["to_stuck"], poll_interval=0.2, max_written_off=0,
       shutdown_grace=0).run()
'''


def test_a_worker_with_too_many_stuck_threads_exits_with_status_75(
    client: Client, db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "stuck.py").write_text(textwrap.dedent(STUCK))
    client.register_flow({"slug": "timeouts.stuck", "steps": [
        {"slug": "hang", "execution": "distributed", "queue": "to_stuck", "timeout": 1,
         "max_attempts": 1}]})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "python"), str(REPO)]))
    proc = subprocess.Popen([sys.executable, "stuck.py", db_url], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client.start_flow("timeouts.stuck", {})
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.communicate()[0]
    assert code == EXIT_STUCK_HANDLERS == 75, out[-3000:]
    assert "stuck past their step's timeout" in out


class Permanent(Workflow):
    """A handler that knows retrying cannot help."""

    slug = "timeouts.permanent"

    @step(execution="distributed", queue="to_perm", max_attempts=5, base_delay=0)
    def refuse(self, input: dict[str, Any]) -> str:
        """Refuse for good."""
        raise NonRetryableError("the invoice number is malformed")


class Unserialisable(Workflow):
    """A handler whose output JSON cannot hold."""

    slug = "timeouts.unserialisable"

    @step(execution="distributed", queue="to_perm", max_attempts=5, base_delay=0)
    def odd(self, input: dict[str, Any]) -> object:
        """Return something that is not JSON."""
        return object()


@pytest.mark.parametrize(("workflow", "error"), [
    (Permanent, "NonRetryableError: the invoice number is malformed"),
    (Unserialisable, "returned a value that is not JSON-serialisable"),
], ids=["non_retryable_error", "unserialisable_output"])
def test_a_deterministic_failure_fails_the_task_at_once(
    client: Client, db_url: str, serve: Any, workflow: type[Workflow], error: str
) -> None:
    client.register_flow(workflow)
    serve(["to_perm"])
    run_id = client.start_flow(workflow.slug, {})  # type: ignore[arg-type]
    status = wait_run(client, run_id)
    assert status.status == "failed"
    [(state, attempts, message)] = tasks(db_url, run_id)
    assert (state, attempts) == ("failed", 1)  # not 5
    assert message is not None and error in message, message
