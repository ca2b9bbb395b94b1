"""The StepContext a handler may ask for, through a real Worker and through execute().

* its fields for single and map steps (run, flow, version, step, attempt, map index, deadline);
* ``heartbeat()`` moves the message's visibility timeout (the lease) now;
* ``cancelled`` turns true once the run is cancelled while the handler runs, and while it is
  paused (``paused`` too; a resume clears both, and the result of the attempt is kept);
* one-argument handlers (and ones with an optional second parameter) are called as before;
* signatures the engine cannot call fail when the workflow is defined, naming the handler.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from singularity_workflow import (
    Client,
    DefinitionError,
    StepContext,
    Worker,
    Workflow,
    execute,
    register_handlers,
    step,
)


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


seen: dict[str, Any] = {}


class CtxFlow(Workflow):
    """A single step, a map step over its output, and an old one-argument leaf."""

    slug = "ctx_flow"
    timeout = 600

    @step(execution="distributed", queue="ctx_q")
    def split(self, input: dict[str, Any], ctx: StepContext) -> list[int]:
        """Step split."""
        seen["split"] = (ctx.run_id, ctx.flow_slug, ctx.step_slug, ctx.attempt, ctx.map_index,
                         ctx.version, ctx.version_hash, ctx.deadline)
        ctx.logger.info("splitting")
        return [10, 20, 30]

    @step(depends_on=["split"], map=True, execution="distributed", queue="ctx_q")
    def each(self, item: int, ctx: StepContext) -> int:
        """Step each."""
        seen.setdefault("each", []).append((item, ctx.map_index, ctx.step_slug))
        return item + 1

    @step(depends_on=["each"], execution="distributed", queue="ctx_q")
    def total(self, input: dict[str, Any], retries: int = 3) -> int:
        """Step total."""
        # An optional second parameter is the handler's own: no context is passed to it.
        seen["total_retries"] = retries
        return int(sum(input["each"]))


def test_context_fields_for_single_and_map_steps(
    client: Client, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen.clear()
    caplog.set_level(logging.INFO, logger="singularity_workflow.step")
    client.register_flow(CtxFlow)
    run_id = client.start_flow(CtxFlow, {"n": 3})
    serve(["ctx_q"])
    status = wait_run(client, run_id)
    assert status.status == "completed", status.error
    assert status.output == {"total": 63}
    rid, flow, stp, attempt, map_index, version, version_hash, deadline = seen["split"]
    assert (rid, flow, stp, attempt, map_index) == (run_id, "ctx_flow", "split", 1, None)
    assert (version, version_hash) == (status.version, status.version_hash)
    assert version == 1 and version_hash
    assert deadline == status.deadline_at and deadline is not None
    assert sorted(seen["each"]) == [(10, 0, "each"), (20, 1, "each"), (30, 2, "each")]
    assert seen["total_retries"] == 3
    [record] = [r for r in caplog.records if r.getMessage().endswith("splitting")]
    assert str(run_id) in record.getMessage() and "split#1" in record.getMessage()
    assert record.__dict__["step_slug"] == "split" and record.__dict__["attempt"] == 1


class LocalCtx(Workflow):
    """execute()'s local steps get the same context, positionally or by keyword."""

    slug = "ctx_local"

    @step
    def first(self, input: dict[str, Any], context: StepContext) -> dict[str, Any]:
        """Step first."""
        return {"run": str(context.run_id), "step": context.step_slug,
                "attempt": context.attempt}

    @step(depends_on=["first"])
    def second(self, input: dict[str, Any], *, ctx: StepContext) -> str:
        """Step second."""
        return f"{ctx.step_slug}:{ctx.map_index}:{input['first']['step']}"

    @step(depends_on=["second"])
    def old(self, input: dict[str, Any]) -> str:
        """Step old."""
        return input["second"] + "!"


def test_execute_local_steps_get_the_context(db_url: str) -> None:
    with Client(db_url) as c:
        result = execute(LocalCtx, {}, client=c, timeout=60)
        outputs = c.get_step_outputs(result.run_id)
    assert outputs["first"] == {"run": str(result.run_id), "step": "first", "attempt": 1}
    assert outputs["second"] == "second:None:first"
    assert result.output == {"old": "second:None:first!"}


vts: list[Any] = []


def _vt(db_url: str, task_id: int) -> Any:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select t.message_id, t.queue_name from workflow.tasks t where t.task_id = %s",
            [task_id]).fetchone()
        assert row is not None
        return conn.execute(f"select vt from pgmq.q_{row[1]} where msg_id = %s",
                            [row[0]]).fetchone()[0]  # type: ignore[index]


class Beat(Workflow):
    """Test fixture Beat."""

    slug = "ctx_beat"

    @step(execution="distributed", queue="ctx_beat_q", timeout=120)
    def work(self, input: dict[str, Any], ctx: StepContext) -> bool:
        """Step work."""
        url = input["run"]["url"]
        before = _vt(url, ctx.task_id)
        time.sleep(1.5)
        ok = ctx.heartbeat()
        after = _vt(url, ctx.task_id)
        vts.extend([before, after])
        return ok


def test_heartbeat_extends_the_lease_now(db_url: str, client: Client, serve: Any) -> None:
    vts.clear()
    client.register_flow(Beat)
    run_id = client.start_flow(Beat, {"url": db_url})
    # The lease thread renews at half the 120 s lease: nothing but heartbeat() moves vt here.
    serve(["ctx_beat_q"])
    status = wait_run(client, run_id)
    assert status.status == "completed", status.error
    assert status.output == {"work": True}
    before, after = vts
    assert (after - before).total_seconds() >= 1.4


started = threading.Event()
observed: dict[str, Any] = {}


class Cancelled(Workflow):
    """Test fixture Cancelled."""

    slug = "ctx_cancel"

    @step(execution="distributed", queue="ctx_cancel_q", timeout=2)
    def long(self, input: dict[str, Any], ctx: StepContext) -> str:
        """Step long."""
        observed["at_start"] = ctx.cancelled
        started.set()
        deadline = time.monotonic() + 15
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.05)
        observed["at_end"] = ctx.cancelled
        return "stopped"


def test_cancelled_turns_true_after_cancel(client: Client, serve: Any) -> None:
    started.clear()
    observed.clear()
    client.register_flow(Cancelled)
    run_id = client.start_flow(Cancelled, {})
    serve(["ctx_cancel_q"])
    assert started.wait(15)
    client.cancel_workflow_run(run_id, reason="test")
    deadline = time.monotonic() + 15
    while "at_end" not in observed and time.monotonic() < deadline:
        time.sleep(0.05)
    # The lease (2 s) is renewed every second; the first renewal after the cancel is refused.
    assert observed == {"at_start": False, "at_end": True}
    assert client.get_run_status(run_id).state == "cancelled"


pause_seen = threading.Event()
pause_observed: dict[str, Any] = {}


class Paused(Workflow):
    """Test fixture Paused: a long step that watches its context through a pause and resume."""

    slug = "ctx_pause"

    @step(execution="distributed", queue="ctx_pause_q", timeout=10)
    def long(self, input: dict[str, Any], ctx: StepContext) -> str:
        """Step long: wait until the pause is seen, then until the resume is seen."""
        pause_observed["at_start"] = (ctx.cancelled, ctx.paused)
        started.set()
        deadline = time.monotonic() + 15
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.05)
        pause_observed["paused"] = (ctx.cancelled, ctx.paused)
        pause_seen.set()
        while ctx.paused and time.monotonic() < deadline:
            time.sleep(0.05)
        pause_observed["resumed"] = (ctx.cancelled, ctx.paused)
        return "kept"

    @step(execution="distributed", queue="ctx_pause_q", depends_on=["long"])
    def after(self, input: dict[str, Any]) -> Any:
        """Step after: runs once the run is resumed."""
        return input["long"]


def test_cancelled_and_paused_turn_true_while_the_run_is_paused(
    client: Client, serve: Any
) -> None:
    started.clear()
    pause_seen.clear()
    pause_observed.clear()
    client.register_flow(Paused)
    run_id = client.start_flow(Paused, {})
    serve(["ctx_pause_q"], lease_renew_fraction=0.1)
    assert started.wait(15)
    client.pause_workflow_run(run_id)
    # The lease (10 s) is renewed every second: the first renewal after the pause flags it.
    assert pause_seen.wait(15), pause_observed
    assert client.get_run_status(run_id).state == "paused"
    client.resume_workflow_run(run_id)
    status = wait_run(client, run_id)
    assert pause_observed == {
        "at_start": (False, False),
        "paused": (True, True),
        "resumed": (False, False),
    }
    # The lease was extended throughout: the attempt's result was kept, not re-run.
    assert status.status == "completed", status.error
    assert status.output == {"after": "kept"}
    assert client.get_step_outputs(run_id)["long"] == "kept"


def test_heartbeat_reports_a_paused_run(client: Client, serve: Any) -> None:
    """heartbeat() on a paused run extends the lease (True) and sets paused at once."""
    seen: dict[str, Any] = {}
    go = threading.Event()

    class Beat(Workflow):
        """Test fixture Beat."""

        slug = "ctx_pause_beat"

        @step(execution="distributed", queue="ctx_pause_beat_q", timeout=30)
        def only(self, input: dict[str, Any], ctx: StepContext) -> str:
            """Step only: heartbeat once the test paused the run."""
            started.set()
            go.wait(15)
            seen["beat"] = ctx.heartbeat()
            seen["flags"] = (ctx.cancelled, ctx.paused)
            return "ok"

    started.clear()
    client.register_flow(Beat)
    run_id = client.start_flow(Beat, {})
    serve(["ctx_pause_beat_q"])
    assert started.wait(15)
    client.pause_workflow_run(run_id)
    go.set()
    deadline = time.monotonic() + 15
    while "flags" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
    # The lease is 30 s, so the lease thread has not renewed yet: heartbeat() learned it.
    assert seen == {"beat": True, "flags": (True, True)}
    # Its only step finished while paused: the result is kept and the run ends with it.
    status = wait_run(client, run_id)
    assert status.status == "completed", status.error
    assert status.output == {"only": "ok"}


def test_bad_signatures_fail_at_definition_naming_the_handler() -> None:
    with pytest.raises(DefinitionError, match=r"handler .*two_extra.* b") as exc:
        class TwoExtra(Workflow):
            """Test fixture TwoExtra."""

            slug = "ctx_bad_1"

            @step
            def two_extra(self, input: Any, a: Any, b: Any) -> None: ...
    assert exc.value.code == "WF010"

    with pytest.raises(DefinitionError, match=r"kw_only.*keyword-only parameter 'x'"):
        class KwOnly(Workflow):
            """Test fixture KwOnly."""

            slug = "ctx_bad_2"

            @step
            def kw_only(self, input: Any, *, x: int) -> None: ...

    with pytest.raises(DefinitionError, match=r"no_input.*no parameter for the step's input"):
        class NoInput(Workflow):
            """Test fixture NoInput."""

            slug = "ctx_bad_3"

            @step
            def no_input(self) -> None: ...

    with pytest.raises(DefinitionError, match=r"ctx_bad_4, step s: handler .*lambda.*'ctx2'"):
        register_handlers("ctx_bad_4", {"s": lambda i, c, *, ctx2: None})


def test_accepted_signatures() -> None:
    def kw(input: Any, *, ctx: StepContext, extra: int = 1) -> None: ...

    def twice(input: Any, ctx: Any, *, other: StepContext) -> None: ...

    register_handlers("ctx_ok", {"a": kw, "b": lambda i: i, "c": print})
    with pytest.raises(DefinitionError, match="twice"):
        register_handlers("ctx_ok2", {"a": twice})


class AsyncCtx(Workflow):
    """An async handler takes the context too (it runs on the engine's event loop)."""

    slug = "ctx_async"

    @step
    async def only(self, input: dict[str, Any], ctx: StepContext) -> list[Any]:
        """Step only."""
        return [ctx.step_slug, ctx.attempt, ctx.heartbeat()]


def test_async_handlers_get_the_context(db_url: str) -> None:
    with Client(db_url) as c:
        result = execute(AsyncCtx, {}, client=c, timeout=60)
    assert result.output == {"only": ["only", 1, True]}
