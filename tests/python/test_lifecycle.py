"""Lifecycle control from Python: status, listing, cancel, pause, resume, retry, run deadlines.

The control tests run real Workers (threads of this process, each with its own connections) on
a map step whose tasks sleep 0.2 s, and act on the run while four workers are busy with it. What
was dispatched is read from the task rows, so the assertions do not depend on timing: a task the
database handed out after a pause or cancel would show up as a new started task.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

import singularity_workflow._client as client_module
from singularity_workflow import (
    Client,
    InvalidOption,
    InvalidState,
    RunNotFound,
    RunStatus,
    RunTimeout,
    StepStatus,
    Worker,
    Workflow,
    WorkflowRun,
    cancel_workflow_run,
    execute,
    get_run_status,
    list_workflow_runs,
    pause_workflow_run,
    resume_workflow_run,
    retry_failed_workflow,
    step,
)

MAP_SIZE = 60
TASK_SECONDS = 0.2


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture
def serve(db_url: str) -> Iterator[Callable[..., Worker]]:
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


def wait_until(what: Callable[[], Any], timeout: float = 15, message: str = "") -> Any:
    """Poll ``what()`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s: {message or what}")
        time.sleep(0.02)


def task_rows(db_url: str, run_id: UUID, step_slug: str) -> list[dict[str, Any]]:
    """Return the tasks of one step of a run, by index."""
    with psycopg.connect(db_url) as conn:
        cur = conn.execute(
            "select task_index, status, attempts_count, error_message from workflow.tasks"
            " where run_id = %s and step_slug = %s order by task_index",
            [run_id, step_slug],
        )
        return [
            {"index": i, "status": s, "attempts": a, "error": e} for i, s, a, e in cur.fetchall()
        ]


def live_messages(db_url: str, queue: str, run_id: UUID) -> int:
    """Messages of the run still in the queue's pgmq table (visible or not)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            psycopg.sql.SQL("select count(*) from pgmq.{} where message ->> 'run_id' = %s").format(
                psycopg.sql.Identifier(f"q_{queue}")
            ),
            [str(run_id)],
        ).fetchone()
        assert row is not None
        return int(row[0])


class Tally:
    """Thread-safe record of which map items handlers started and finished."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: Counter[int] = Counter()
        self.finished: Counter[int] = Counter()

    def run(self, item: int) -> int:
        """Record the start, sleep 0.2 s, record the end; return item * 10."""
        with self.lock:
            self.started[item] += 1
        time.sleep(TASK_SECONDS)
        with self.lock:
            self.finished[item] += 1
        return item * 10

    def started_items(self) -> set[int]:
        """Return the items whose handler started."""
        with self.lock:
            return set(self.started)


PAUSE_TALLY = Tally()
CANCEL_TALLY = Tally()


class PauseFlow(Workflow):
    """A list, then one 0.2 s task per element."""

    slug = "test_lifecycle.pause"

    @step(execution="distributed", queue="lc_pause")
    def items(self, input: dict[str, Any]) -> list[int]:
        """Return the elements to work on."""
        return list(range(int(input["run"]["n"])))

    @step(depends_on=["items"], map=True, execution="distributed", queue="lc_pause")
    def work(self, item: int) -> int:
        """Sleep 0.2 s."""
        return PAUSE_TALLY.run(item)


class CancelFlow(Workflow):
    """Same shape as PauseFlow, on its own queue."""

    slug = "test_lifecycle.cancel"

    @step(execution="distributed", queue="lc_cancel")
    def items(self, input: dict[str, Any]) -> list[int]:
        """Return the elements to work on."""
        return list(range(int(input["run"]["n"])))

    @step(depends_on=["items"], map=True, execution="distributed", queue="lc_cancel")
    def work(self, item: int) -> int:
        """Sleep 0.2 s."""
        return CANCEL_TALLY.run(item)


def dispatched(rows: list[dict[str, Any]]) -> set[int]:
    """Indexes of the tasks the database has handed out (claimed at least once)."""
    return {r["index"] for r in rows if r["attempts"] > 0}


# ----- status and listing ---------------------------------------------------------------------


def test_get_run_status_is_typed_and_follows_the_run(client: Client) -> None:
    client.register_flow(
        {
            "slug": "lc_status",
            "steps": [
                {"slug": "a", "execution": "distributed", "queue": "lc_idle"},
                {"slug": "b", "execution": "distributed", "depends_on": ["a"], "queue": "lc_idle"},
            ],
        }
    )
    run_id = client.start_flow("lc_status", {"k": 1}, timeout_seconds=30)
    status = client.get_run_status(run_id)
    assert isinstance(status, RunStatus)
    assert (status.run_id, status.flow_slug, status.status, status.state) == (
        run_id,
        "lc_status",
        "in_progress",
        "running",
    )
    assert (status.total_steps, status.completed_steps, status.percentage) == (2, 0, 0.0)
    assert status.input == {"k": 1}
    assert status.deadline_at is not None
    assert status.deadline_at - status.started_at == timedelta(seconds=30)
    assert [s.step for s in status.steps] == ["a", "b"]
    assert isinstance(status.step("a"), StepStatus)
    assert status.step("a").status == "started" and status.step("b").status == "created"
    assert not status.finished and not status.paused and not status.cancelled

    [task] = client.claim_tasks("lc_idle", 10)
    assert client.complete_tasks([(task.task_id, task.attempt, {"a": "done"})]) == {
        task.task_id: True
    }
    status = client.get_run_status(str(run_id))  # a run id as text works too
    assert (status.completed_steps, status.percentage) == (1, 50.0)
    assert status.step("a").completed_at is not None
    as_json = status.to_dict()
    assert as_json["run_id"] == str(run_id)
    assert as_json["steps"][0]["step"] == "a"
    assert isinstance(as_json["started_at"], str)


def test_status_of_an_unknown_run_is_run_not_found(client: Client) -> None:
    with pytest.raises(RunNotFound) as err:
        client.get_run_status(uuid4())
    assert err.value.code == "WF011"


def test_list_workflow_runs_filters_orders_and_whitelists(client: Client) -> None:
    client.register_flow({"slug": "lc_list_a", "steps": [{"slug": "a", "execution": "distributed",
                                                          "queue": "lc_idle"}]})
    client.register_flow({"slug": "lc_list_b", "steps": [{"slug": "a", "execution": "distributed",
                                                          "queue": "lc_idle"}]})
    a1 = client.start_flow("lc_list_a", {})
    b1 = client.start_flow("lc_list_b", {})
    a2 = client.start_flow("lc_list_a", {})
    client.pause_workflow_run(a2)
    client.cancel_workflow_run(b1, "no longer needed")

    runs = client.list_workflow_runs(workflow_slug="lc_list_a")
    assert all(isinstance(r, WorkflowRun) for r in runs)
    assert [r.run_id for r in runs] == [a2, a1]  # newest first
    assert [
        r.run_id
        for r in client.list_workflow_runs(
            workflow_slug="lc_list_a", order_by=("asc", "inserted_at")
        )
    ] == [a1, a2]
    # The Elixir library's tuple, written either way round, or a column alone.
    assert [
        r.run_id
        for r in client.list_workflow_runs(
            workflow_slug="lc_list_a", order_by=("started_at", "asc")
        )
    ] == [a1, a2]
    assert [
        r.run_id
        for r in client.list_workflow_runs(workflow_slug="lc_list_a", order_by="started_at")
    ] == [a2, a1]
    assert [r.run_id for r in client.list_workflow_runs("paused")] == [a2]
    [cancelled] = client.list_workflow_runs("cancelled")
    assert (cancelled.run_id, cancelled.status, cancelled.state) == (b1, "failed", "cancelled")
    assert cancelled.error_message == "no longer needed"
    assert cancelled.finished_at is not None
    assert [
        r.run_id for r in client.list_workflow_runs(workflow_slug="lc_list_a", limit=1, offset=1)
    ] == [a1]

    with pytest.raises(InvalidOption) as err:
        client.list_workflow_runs(order_by=("desc", "started_at; drop table workflow.runs"))
    assert err.value.code == "WF010"
    with pytest.raises(InvalidOption):
        client.list_workflow_runs("sleeping")
    with pytest.raises(InvalidOption):
        client.list_workflow_runs(limit=0)
    with pytest.raises(TypeError):
        client.list_workflow_runs(order_by=("desc", "started_at", "run_id"))  # type: ignore[arg-type]
    assert client.list_workflow_runs(workflow_slug="lc_list_a", limit=5)  # the table survived


def test_module_functions_use_the_default_client(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "_default", client)
    client.register_flow({"slug": "lc_default", "steps": [
        {"slug": "a", "execution": "distributed", "queue": "lc_idle"}]})
    run_id = client.start_flow("lc_default", {})
    pause_workflow_run(run_id)
    pause_workflow_run(run_id)  # idempotent
    assert get_run_status(run_id).state == "paused"
    resume_workflow_run(run_id)
    assert get_run_status(run_id).state == "running"
    assert run_id in {r.run_id for r in list_workflow_runs("started", "lc_default")}
    cancel_workflow_run(run_id)
    status = get_run_status(run_id)
    assert (status.state, status.error) == ("cancelled", "User requested cancellation")
    with pytest.raises(InvalidState):
        pause_workflow_run(run_id)
    with pytest.raises(InvalidState):
        resume_workflow_run(run_id)
    new_run = retry_failed_workflow(run_id)
    assert get_run_status(new_run).retry_of == run_id


def test_ended_runs_refuse_control_unless_forced(client: Client) -> None:
    client.register_flow({"slug": "lc_ended", "steps": [{"slug": "a", "execution": "distributed",
                                                         "queue": "lc_ended"}]})
    run_id = client.start_flow("lc_ended", {})
    [task] = client.claim_tasks("lc_ended")
    client.complete_tasks([(task.task_id, task.attempt, 1)])
    for control in (
        client.pause_workflow_run,
        client.resume_workflow_run,
        client.cancel_workflow_run,
        client.retry_failed_workflow,
    ):
        with pytest.raises(InvalidState) as err:
            control(run_id)
        assert err.value.code == "WF013"
    client.cancel_workflow_run(run_id, "recalled", force=True)
    assert client.get_run_status(run_id).state == "cancelled"
    with pytest.raises(RunNotFound):
        client.cancel_workflow_run(uuid4())


# ----- pause, resume, cancel with four busy workers -------------------------------------------


def test_pause_and_resume_while_four_workers_are_busy(
    client: Client, db_url: str, serve: Callable[..., Worker]
) -> None:
    client.register_flow(PauseFlow)
    # A 30 s poll: after the resume, only the database's wake-up notification can bring the
    # workers back within the test's time.
    workers = [serve(["lc_pause"], concurrency=1, poll_interval=30) for _ in range(4)]
    run_id = client.start_flow(PauseFlow.slug, {"n": MAP_SIZE})
    wait_until(lambda: len(PAUSE_TALLY.finished) >= 8, message="8 tasks finished")

    client.pause_workflow_run(run_id)
    handed_out = dispatched(task_rows(db_url, run_id, "work"))
    assert client.get_run_status(run_id).state == "paused"
    assert len(handed_out) < MAP_SIZE
    # The tasks already running finish, and their outputs count.
    wait_until(
        lambda: all(r["status"] != "started" for r in task_rows(db_url, run_id, "work")),
        message="the running tasks finished",
    )
    time.sleep(1.0)  # a second of pause: every worker polls or is woken meanwhile, none claims
    rows = task_rows(db_url, run_id, "work")
    assert dispatched(rows) == handed_out, "a task was dispatched after the pause"
    assert PAUSE_TALLY.started_items() == handed_out
    assert {r["index"] for r in rows if r["status"] == "completed"} == handed_out
    assert client.get_run_status(run_id).step("work").tasks_completed == len(handed_out)

    resumed_at = time.monotonic()
    client.resume_workflow_run(run_id)
    wait_until(lambda: client.get_run_status(run_id).finished, timeout=20, message="run ended")
    assert time.monotonic() - resumed_at < 10  # woken by the resume, not by a 30 s poll
    status = client.get_run_status(run_id)
    assert status.state == "completed"
    assert status.output == {"work": [i * 10 for i in range(MAP_SIZE)]}
    assert all(r["attempts"] == 1 for r in task_rows(db_url, run_id, "work"))
    assert PAUSE_TALLY.started == Counter(range(MAP_SIZE)), "a task ran twice or not at all"
    assert sum(w.stats.completed for w in workers if w.stats) == MAP_SIZE + 1
    assert sum(w.stats.stale for w in workers if w.stats) == 0


def test_cancel_while_four_workers_are_busy(
    client: Client, db_url: str, serve: Callable[..., Worker]
) -> None:
    client.register_flow(CancelFlow)
    workers = [serve(["lc_cancel"], concurrency=1, poll_interval=0.5) for _ in range(4)]
    run_id = client.start_flow(CancelFlow.slug, {"n": MAP_SIZE})
    wait_until(lambda: len(CANCEL_TALLY.finished) >= 8, message="8 tasks finished")

    client.cancel_workflow_run(run_id, "operator stop")
    rows = task_rows(db_url, run_id, "work")
    completed = {r["index"] for r in rows if r["status"] == "completed"}
    running = {r["index"] for r in rows if r["status"] == "failed" and r["attempts"] == 1}
    assert all(r["status"] in ("completed", "failed") for r in rows), "live tasks remain"
    assert live_messages(db_url, "lc_cancel", run_id) == 0
    assert len(running) <= 4
    # The tasks that were running finish; their completions are refused, not counted.
    wait_until(
        lambda: sum(w.stats.stale + w.stats.abandoned for w in workers if w.stats) == len(running),
        message="the running tasks reported and were refused",
    )
    time.sleep(1.0)  # two poll intervals: nothing of the run is claimed any more
    rows = task_rows(db_url, run_id, "work")
    assert {r["index"] for r in rows if r["status"] == "completed"} == completed
    assert dispatched(rows) == completed | running
    assert CANCEL_TALLY.started_items() == completed | running
    assert all(n == 1 for n in CANCEL_TALLY.started.values()), "a task ran twice"
    status = client.get_run_status(run_id)
    assert (status.status, status.state, status.error) == ("failed", "cancelled", "operator stop")
    assert status.step("work").tasks_completed == len(completed)


# ----- run deadlines --------------------------------------------------------------------------

DEADLINE_STARTED = threading.Event()
DEADLINE_RELEASE = threading.Event()


class DeadlineFlow(Workflow):
    """One step that runs until released; a 2 s lease, so it is renewed every second."""

    slug = "test_lifecycle.deadline"

    @step(execution="distributed", queue="lc_deadline", timeout=2, max_attempts=1)
    def crawl(self, input: dict[str, Any]) -> str:
        """Wait to be released (at most 20 s)."""
        DEADLINE_STARTED.set()
        DEADLINE_RELEASE.wait(20)
        return "finished late"


def test_a_run_deadline_fires_while_a_step_is_running(
    client: Client, db_url: str, serve: Callable[..., Worker]
) -> None:
    client.register_flow(DeadlineFlow)
    worker = serve(["lc_deadline"], concurrency=1, poll_interval=0.5)
    run_id = client.start_flow(DeadlineFlow.slug, {}, timeout_seconds=1)
    try:
        assert DEADLINE_STARTED.wait(10), "the step never started"

        # The deadline is enforced in the database by enforce_deadlines, which anyone may call
        # (workers on their polling cycle); calling it here makes the test independent of that.
        def cancelled() -> bool:
            client.enforce_deadlines()
            return client.get_run_status(run_id).cancelled

        wait_until(cancelled, timeout=10, message="the deadline cancelled the run")
        status = client.get_run_status(run_id)
        assert (status.status, status.state, status.error) == (
            "failed",
            "cancelled",
            "deadline exceeded",
        )
        assert status.cancelled_at is not None and status.deadline_at is not None
        assert status.cancelled_at >= status.deadline_at
        assert live_messages(db_url, "lc_deadline", run_id) == 0
        # The worker learns it at its next lease renewal (every second) and gives the task up.
        wait_until(
            lambda: worker.stats is not None and worker.stats.abandoned == 1,
            timeout=5,
            message="the lease renewal was refused",
        )
    finally:
        DEADLINE_RELEASE.set()
    time.sleep(0.5)
    assert worker.stats is not None and worker.stats.completed == 0
    [task] = task_rows(db_url, run_id, "crawl")
    assert (task["status"], task["attempts"]) == ("failed", 1)
    assert client.get_run_status(run_id).output is None


def test_execute_gives_its_run_a_deadline_of_the_timeout(client: Client) -> None:
    release = threading.Event()

    class Stuck(Workflow):
        slug = "test_lifecycle.stuck"

        @step(timeout=30)
        def wait(self, input: dict[str, Any]) -> str:
            """Block until released."""
            release.wait(10)
            return "late"

    try:
        with pytest.raises(RunTimeout) as err:
            execute(Stuck, {}, timeout=0.5, client=client)
    finally:
        release.set()
    status = client.get_run_status(err.value.run_id)
    assert status.deadline_at is not None
    assert status.deadline_at - status.started_at == timedelta(seconds=math.ceil(0.5))
    wait_until(
        lambda: (client.enforce_deadlines(), client.get_run_status(err.value.run_id))[1].cancelled,
        timeout=5,
        message="the run is cancelled by its deadline",
    )
    assert client.get_run_status(err.value.run_id).error == "deadline exceeded"


# ----- retry ----------------------------------------------------------------------------------

RETRY_CALLS: Counter[str] = Counter()
RETRY_BROKEN = threading.Event()


class RetryFlow(Workflow):
    """a -> d, (a, d) -> b -> c; b fails while RETRY_BROKEN is set."""

    slug = "test_lifecycle.retry"

    @step(execution="distributed", queue="lc_retry")
    def a(self, input: dict[str, Any]) -> int:
        """Return the input's x."""
        RETRY_CALLS["a"] += 1
        return int(input["run"]["x"])

    @step(depends_on=["a", "d"], execution="distributed", queue="lc_retry", max_attempts=1)
    def b(self, input: dict[str, Any]) -> int:
        """Fails while broken."""
        RETRY_CALLS["b"] += 1
        if RETRY_BROKEN.is_set():
            raise RuntimeError("b is broken")
        return int(input["a"]) + 1

    @step(depends_on=["b"], execution="distributed", queue="lc_retry")
    def c(self, input: dict[str, Any]) -> int:
        """After b."""
        RETRY_CALLS["c"] += 1
        return int(input["b"]) * 2

    @step(depends_on=["a"], execution="distributed", queue="lc_retry")
    def d(self, input: dict[str, Any]) -> int:
        """Between a and b."""
        RETRY_CALLS["d"] += 1
        return -int(input["a"])


def test_retry_runs_only_the_failed_step_and_its_descendants(
    client: Client, serve: Callable[..., Worker]
) -> None:
    client.register_flow(RetryFlow)
    serve(["lc_retry"], concurrency=1, poll_interval=0.5)
    RETRY_BROKEN.set()
    failed_run = client.start_flow(RetryFlow.slug, {"x": 20})
    wait_until(lambda: client.get_run_status(failed_run).finished, message="first run ended")
    first = client.get_run_status(failed_run)
    assert (first.state, first.failed_step) == ("failed", "b")
    assert {s.step: s.status for s in first.steps} == {
        "a": "completed",
        "d": "completed",
        "b": "failed",
        "c": "created",
    }
    assert RETRY_CALLS == Counter({"a": 1, "d": 1, "b": 1})

    RETRY_BROKEN.clear()
    retry_run = client.retry_failed_workflow(failed_run)
    wait_until(lambda: client.get_run_status(retry_run).finished, message="retry ended")
    second = client.get_run_status(retry_run)
    assert (second.state, second.retry_of, second.input) == ("completed", failed_run, {"x": 20})
    assert second.output == {"c": 42}
    # a and d completed in the failed run: carried over, not run again.
    assert RETRY_CALLS == Counter({"a": 1, "d": 1, "b": 2, "c": 1})

    everything = client.retry_failed_workflow(failed_run, reset_all=True)
    wait_until(lambda: client.get_run_status(everything).finished, message="reset run ended")
    assert client.get_run_status(everything).output == {"c": 42}
    assert RETRY_CALLS == Counter({"a": 2, "d": 2, "b": 3, "c": 2}), "reset_all reruns all"


# ----- the listing's plan on many runs --------------------------------------------------------


def test_the_newest_first_listing_reads_an_index_on_20000_runs(db_url: str) -> None:
    """EXPLAIN of the statement the function runs (its dynamic SQL, logged by auto_explain)."""
    plans: list[str] = []
    with psycopg.connect(db_url) as conn:  # one transaction, rolled back: the runs vanish
        conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
        conn.execute(
            """select workflow.register_flow('{"slug": "lc_many", "steps": [
                {"slug": "a", "execution": "distributed"}]}')"""
        )
        conn.execute(
            "insert into workflow.runs (run_id, flow_slug, version_id, status, remaining_steps,"
            " input, started_at) select gen_random_uuid(), 'lc_many',"
            " (select current_version_id from workflow.flows where flow_slug = 'lc_many'),"
            " (array['started', 'completed', 'failed'])[1 + i % 3], 1, '{}',"
            " now() - make_interval(secs => i) from generate_series(1, 20000) as i"
        )
        conn.execute("analyze workflow.runs")
        conn.execute("load 'auto_explain'")
        conn.execute("set local auto_explain.log_min_duration = 0")
        conn.execute("set local auto_explain.log_nested_statements = on")
        conn.execute("set local client_min_messages = log")
        rows = conn.execute("select run_id from workflow.list_workflow_runs(limit_rows => 20)")
        assert len(rows.fetchall()) == 20
        conn.rollback()
    [plan] = [p for p in plans if "workflow.runs r" in p and "Function Scan" not in p]
    assert "Seq Scan on runs" not in plan, plan
    assert "Index Scan" in plan, plan
