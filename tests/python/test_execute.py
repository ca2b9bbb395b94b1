"""execute / execute_async: a run's local steps in this process, its outcome as a value or error.

Every test runs against the module's real database; the parallelism tests use barriers that
break (and fail the step) unless both steps really run at the same time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from singularity_workflow import (
    Client,
    RunFailed,
    RunResult,
    RunTimeout,
    Worker,
    Workflow,
    _run,
    execute,
    execute_async,
    step,
)


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


class MyWorkflow:
    """The Elixir library's example, in its list form: fetch -> process -> save, all local."""

    __workflow_slug__ = "test_execute.my_workflow"

    @staticmethod
    def __workflow_steps__() -> list[Any]:
        return [
            ("fetch", MyWorkflow.fetch, {"depends_on": []}),
            ("process", MyWorkflow.process, {"depends_on": ["fetch"]}),
            ("save", MyWorkflow.save, {"depends_on": ["process"]}),
        ]

    @staticmethod
    def fetch(input: dict[str, Any]) -> dict[str, Any]:
        """Load the user's records."""
        return {"data": f"records of user {input['run']['user_id']}"}

    @staticmethod
    def process(input: dict[str, Any]) -> dict[str, Any]:
        """Transform what fetch returned."""
        return {"result": input["fetch"]["data"].upper()}

    @staticmethod
    def save(input: dict[str, Any]) -> dict[str, Any]:
        """Store the result."""
        return {"saved": True, "what": input["process"]["result"]}


def test_execute_returns_the_output_of_the_three_step_example(client: Client) -> None:
    result = execute(MyWorkflow, {"user_id": 123}, client=client, timeout=20)
    assert isinstance(result, RunResult)
    assert result.output == {"save": {"saved": True, "what": "RECORDS OF USER 123"}}
    run = client.get_run_status(result.run_id)
    assert run.status == "completed"
    assert run.completed_steps == 3


def test_independent_local_steps_run_in_parallel(client: Client) -> None:
    barrier = threading.Barrier(2, timeout=5)

    class Parallel(Workflow):
        slug = "test_execute.parallel"

        @step(max_attempts=1)
        def left(self, input: dict[str, Any]) -> str:
            barrier.wait()  # breaks after 5 s unless `right` is running at the same time
            return "L"

        @step(max_attempts=1)
        def right(self, input: dict[str, Any]) -> str:
            barrier.wait()
            return "R"

        @step(depends_on=["left", "right"])
        def join(self, input: dict[str, Any]) -> str:
            return input["left"] + input["right"]

    started = time.monotonic()
    result = execute(Parallel, {}, client=client, timeout=20)
    assert result.output == {"join": "LR"}
    assert time.monotonic() - started < 4


def test_map_steps_run_one_task_per_element(client: Client) -> None:
    class Mapping(Workflow):
        slug = "test_execute.mapping"

        @step
        def numbers(self, input: dict[str, Any]) -> list[int]:
            return list(range(input["run"]["n"]))

        @step(depends_on=["numbers"], map=True)
        def square(self, item: int) -> int:
            return item * item

        @step(depends_on=["square"])
        def total(self, input: dict[str, Any]) -> int:
            return sum(input["square"])

    result = execute(Mapping, {"n": 5}, client=client, timeout=20)
    assert result.output == {"total": 30}
    squares = client.get_run_status(result.run_id)
    assert [s.tasks for s in squares.steps] == [1, 5, 1]


def test_async_handlers_run_on_an_event_loop_concurrently(client: Client) -> None:
    a_started, b_started = asyncio.Event(), asyncio.Event()

    class Async(Workflow):
        slug = "test_execute.async"

        # Each waits (5 s at most, then fails the run) until the other has started: only
        # handlers running at the same time on the loop can both get through.
        @step(max_attempts=1)
        async def a(self, input: dict[str, Any]) -> int:
            a_started.set()
            await asyncio.wait_for(b_started.wait(), 5)
            return 1

        @step(max_attempts=1)
        async def b(self, input: dict[str, Any]) -> int:
            b_started.set()
            await asyncio.wait_for(a_started.wait(), 5)
            return 2

        @step(depends_on=["a", "b"])
        async def both(self, input: dict[str, Any]) -> int:
            return int(input["a"]) + int(input["b"])

    result = execute(Async, {}, client=client, timeout=20)
    assert result.output == {"both": 3}


class Mixed(Workflow):
    """Local, then distributed (served by a Worker), then local again."""

    slug = "test_execute.mixed"

    @step
    def fetch(self, input: dict[str, Any]) -> int:
        """Read x from the run input (local)."""
        return int(input["run"]["x"])

    @step(depends_on=["fetch"], execution="distributed", queue="execute_remote")
    def remote(self, input: dict[str, Any]) -> dict[str, Any]:
        """Double it on a worker (distributed)."""
        return {"doubled": input["fetch"] * 2, "thread": threading.current_thread().name}

    @step(depends_on=["remote"])
    def save(self, input: dict[str, Any]) -> int:
        """Add one (local again)."""
        return int(input["remote"]["doubled"]) + 1


def test_a_distributed_step_is_run_by_a_worker_on_its_queue(client: Client, db_url: str) -> None:
    worker = Worker(db_url, ["execute_remote"], poll_interval=30, shutdown_grace=5)
    worker.run_in_thread()
    try:
        result = execute(Mixed, {"x": 20}, client=client, timeout=20)
    finally:
        worker.stop()
        assert worker.join(10)
    assert result.output == {"save": 41}
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select worker_id, queue_name from workflow.tasks where run_id = %s"
            " and step_slug = 'remote'",
            [result.run_id],
        ).fetchone()
    assert row == (worker.worker_id, "execute_remote")


def test_a_failing_handler_is_retried_until_it_succeeds(client: Client, db_url: str) -> None:
    calls: list[int] = []

    class Flaky(Workflow):
        slug = "test_execute.flaky"

        @step(max_attempts=3, base_delay=0)
        def flaky(self, input: dict[str, Any]) -> str:
            calls.append(1)
            if len(calls) < 3:
                raise RuntimeError(f"transient failure {len(calls)}")
            return "finally"

    result = execute(Flaky, {}, client=client, timeout=20)
    assert result.output == {"flaky": "finally"}
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select attempts_count, status from workflow.tasks where run_id = %s",
            [result.run_id],
        ).fetchone()
    assert row == (3, "completed")


def test_a_step_that_keeps_failing_raises_run_failed(client: Client) -> None:
    class Broken(Workflow):
        slug = "test_execute.broken"

        @step
        def first(self, input: dict[str, Any]) -> int:
            return 1

        @step(depends_on=["first"], max_attempts=2, base_delay=0)
        def second(self, input: dict[str, Any]) -> int:
            raise ValueError("the disk is full")

    with pytest.raises(RunFailed) as caught:
        execute(Broken, {}, client=client, timeout=20)
    err = caught.value
    assert err.step == "second"
    assert err.error is not None and err.error.startswith("ValueError: the disk is full")
    assert "Traceback" in err.error
    run = client.get_run_status(err.run_id)
    assert run.status == "failed"
    assert run.failed_step == "second"


def test_a_run_that_outlives_the_timeout_raises_run_timeout(client: Client) -> None:
    release = threading.Event()

    class Slow(Workflow):
        slug = "test_execute.slow"

        @step
        def quick(self, input: dict[str, Any]) -> int:
            return 1

        @step(depends_on=["quick"])
        def slow(self, input: dict[str, Any]) -> int:
            release.wait(10)
            return 2

        @step(depends_on=["slow"])
        def last(self, input: dict[str, Any]) -> int:
            return 3

    started = time.monotonic()
    try:
        with pytest.raises(RunTimeout) as caught:
            execute(Slow, {}, client=client, timeout=1.0)
    finally:
        release.set()
    assert time.monotonic() - started < 3
    err = caught.value
    assert (err.completed_steps, err.total_steps) == (1, 3)
    assert str(err.run_id) in str(err)
    run = client.get_run_status(err.run_id)  # the timed-out run is cancelled, its work swept
    assert (run.status, run.error) == ("failed", "deadline exceeded")
    assert run.cancelled_at is not None
    with client.connection() as conn:
        live = conn.execute(
            "select count(*) from workflow.tasks"
            " where run_id = %s and status in ('queued', 'started')",
            [err.run_id],
        ).fetchone()
    assert live == (0,)


def test_execute_async_awaits_the_same_run(client: Client) -> None:
    async def main() -> tuple[RunResult, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        result = await execute_async(MyWorkflow, {"user_id": 7}, client=client, timeout=20)
        task.cancel()
        return result, ticks

    result, ticks = asyncio.run(main())
    assert result.output == {"save": {"saved": True, "what": "RECORDS OF USER 7"}}
    assert ticks > 0  # the caller's loop kept running while the run executed


def test_a_run_ending_in_its_first_transaction_is_not_missed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the status poll out of the way, only the run's notification can end the wait.
    monkeypatch.setattr(_run, "_POLL_SECONDS", 60.0)

    class EmptyMap(Workflow):
        slug = "test_execute.empty_map"

        @step(map=True)
        def each(self, item: Any) -> Any:
            return item

    result = execute(EmptyMap, [], client=client, timeout=20)
    assert result.output == {"each": []}


def test_local_steps_that_need_resources_still_run_in_the_executing_process(
    client: Client,
) -> None:
    class NeedsGpu(Workflow):
        slug = "test_execute.needs_gpu"

        @step(resources={"gpu": True})
        def render(self, input: dict[str, Any]) -> str:
            return "frame"

    assert execute(NeedsGpu, {}, client=client, timeout=10).output == {"render": "frame"}
