"""Wait steps and durable sleeps over real connections and processes (docs/control-flow.md).

* 1,000 runs each wait on their own event; the events are sent in random order from 4
  connections, a third of them before any run reached its wait step, the rest while two
  workers (real connections, see ``_drive.py``) complete the steps before and after the wait.
  Every run completes with its own payload, exactly once, and nothing is left kept or waiting.
* A 2 s sleep of a step survives the SIGKILL of the worker process that served the step before
  it: the sleeping task is a queue message nobody holds, and a new worker claims it once, at
  its wake time.
* Definitions: the Python checks of the control-flow options, and approve/reject through the
  client.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from singularity_workflow import (
    Client,
    DefinitionError,
    NotAWaitStep,
    StepNotWaiting,
    UnknownEvent,
    Workflow,
    step,
)
from singularity_workflow.definitions import workflow_def
from tests.fixtures import import_file
from tests.python._drive import Outcome, Task, drive, errors_of

REPO = Path(__file__).resolve().parents[2]
RUNS = 1000
SENDERS = 4


def test_a_wait_step_is_declared_without_placement() -> None:
    class Approval(Workflow):
        slug = "test_control_flow.decl"

        @step(execution="distributed")
        def draft(self, input: Any) -> int:
            return 1

        @step(depends_on=["draft"], wait_for="review", event_key="input.doc.id", wait_timeout=60)
        def review(self, input: Any) -> None:
            """Wait for the review event of this document."""

        @step(depends_on=["review"], execution="distributed", sleep="review.delay")
        def publish(self, input: Any) -> Any:
            return input

    review = workflow_def(Approval).step("review")
    assert (review.type, review.execution, review.queue) == ("wait", "distributed", "default")
    assert review.definition()["wait_for"] == "review"
    assert review.definition()["event_key"] == "input.doc.id"
    assert workflow_def(Approval).step("publish").definition()["sleep"] == "review.delay"
    assert "sleep" not in workflow_def(Approval).step("draft").definition()


@pytest.mark.parametrize(
    "options",
    [
        {"wait_for": "bad name"},
        {"wait_for": "e", "queue": "q"},
        {"wait_for": "e", "map": True},
        {"wait_for": "e", "event_key": "input"},
        {"wait_for": "e", "wait_timeout": 0},
        {"event_key": "run_id"},
        {"sleep": -1},
        {"sleep": "other.delay"},
    ],
)
def test_bad_control_options_fail_at_definition(options: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError) as caught:

        class Bad(Workflow):
            slug = "test_control_flow.bad"

            @step(**options)
            def only(self, input: Any) -> None: ...

    assert caught.value.code == "WF010"


def test_the_server_accepts_what_python_declares(db_url: str) -> None:
    class Declared(Workflow):
        slug = "test_control_flow.declared"

        @step(execution="distributed")
        def a(self, input: Any) -> int:
            return 1

        @step(depends_on=["a"], wait_for="declared", wait_timeout=5)
        def hold(self, input: Any) -> None: ...

        @step(depends_on=["hold"], execution="distributed", sleep=3)
        def b(self, input: Any) -> int:
            return 2

    with Client(db_url) as client:
        client.register_flow(Declared)
        stored = client.get_flow("test_control_flow.declared")
        assert stored["steps"] == [s.definition() for s in workflow_def(Declared).steps]
        # The shape Python declares is the shape the server stored: registering again is a no-op.
        assert client.register_flow_version(Declared).created is False


def test_approve_and_reject_through_the_client(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow(
            {"slug": "test_control_flow.review", "steps": [{"slug": "ok", "wait_for": "review"}]}
        )
        first = client.start_flow("test_control_flow.review", {})
        second = client.start_flow("test_control_flow.review", {})
        waiting = client.get_run_status(first).steps[0].waiting_for_event
        assert waiting is not None
        assert (waiting["event"], waiting["key"]) == ("review", str(first))
        assert waiting["timeout_at"] is None
        assert client.approve(first, "ok", by="ann", comment="fine")["status"] == "delivered"
        assert client.reject(second, "ok", by="bob")["run_id"] == str(second)
        outputs = {r: client.get_run_status(r).output for r in (first, second)}
        assert outputs[first]["ok"]["approved"] is True
        assert outputs[first]["ok"]["by"] == "ann"
        assert outputs[second]["ok"]["approved"] is False
        with pytest.raises(StepNotWaiting):
            client.approve(first, "ok")
        with pytest.raises(NotAWaitStep):
            client.approve(first, "nope")
        with pytest.raises(UnknownEvent):
            client.send_event("never_declared", str(first), {})


def _proof_handler(task: Task) -> Outcome:
    """pre: its run id; post: echo what the wait step received."""
    if task["step_slug"] == "pre":
        return ("ok", str(task["run_id"]))
    return ("ok", task["input"]["hold"])


@pytest.mark.slow
def test_a_thousand_runs_each_get_their_own_event_exactly_once(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow({"slug": "test_control_flow.proof", "steps": [
            {"slug": "pre", "execution": "distributed", "queue": "proof_q"},
            {"slug": "hold", "depends_on": ["pre"], "wait_for": "proof"},
            {"slug": "post", "depends_on": ["hold"], "execution": "distributed",
             "queue": "proof_q"},
        ]})
        run_ids = client.start_flows("test_control_flow.proof", [{} for _ in range(RUNS)])
    rng = random.Random(16)
    order = list(run_ids)
    rng.shuffle(order)
    early, late = order[: RUNS // 3], order[RUNS // 3 :]
    results: dict[UUID, str] = {}
    errors: list[tuple[str | None, str]] = []
    lock = threading.Lock()

    def send(share: list[UUID]) -> None:
        """Send each run its own event from this thread's own connection."""
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                for run_id in share:
                    row = conn.execute(
                        "select workflow.send_event('proof', %s, %s)",
                        [str(run_id), Jsonb({"for": str(run_id)})],
                    ).fetchone()
                    assert row is not None
                    with lock:
                        results[run_id] = row[0]["status"]
                    time.sleep(rng.random() * 0.002)
        except psycopg.Error as exc:
            with lock:
                errors.append((exc.sqlstate, str(exc)))

    def send_all(ids: list[UUID]) -> None:
        shares = [ids[i::SENDERS] for i in range(SENDERS)]
        threads = [threading.Thread(target=send, args=(s,)) for s in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    # A third before any wait step started: those must be kept, then consumed.
    send_all(early)
    assert not errors, errors
    assert Counter(results.values()) == {"kept": len(early)}
    senders = threading.Thread(target=send_all, args=(late,))
    senders.start()
    stats = drive(db_url, "proof_q", ["test_control_flow.proof"], _proof_handler,
                  drivers=2, batch=50, timeout=240)
    senders.join(120)
    assert not errors, errors
    assert not errors_of(stats), errors_of(stats)

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "select r.run_id, r.status, s.output, r.output"
            " from workflow.runs r join workflow.step_states s"
            "   on s.run_id = r.run_id and s.step_slug = 'hold'"
            " where r.flow_slug = 'test_control_flow.proof'"
        ).fetchall()
        assert len(rows) == RUNS
        for run_id, status, hold, output in rows:
            assert status == "completed", run_id
            # Its own payload, not another run's, seen by the step after the wait too.
            assert hold == {"for": str(run_id)}
            assert output == {"post": {"for": str(run_id)}}
        # Each event was used once: nothing kept, nothing waiting, each post ran once.
        assert conn.execute("select count(*) from workflow.pending_events").fetchone() == (0,)
        assert conn.execute("select count(*) from workflow.event_waits").fetchone() == (0,)
        assert conn.execute(
            "select count(*), max(attempts_count) from workflow.tasks t"
            " join workflow.runs r using (run_id)"
            " where r.flow_slug = 'test_control_flow.proof' and t.step_slug = 'post'"
        ).fetchone() == (RUNS, 1)
    assert len(results) == RUNS
    counts = Counter(results.values())
    assert counts["kept"] >= len(early) and counts["kept"] + counts["delivered"] == RUNS


SLEEP_FLOWS = """
import os
import time
from singularity_workflow import Workflow, step

class Nap(Workflow):
    slug = "test_control_flow.nap"

    @step(execution="distributed", queue="nap_q")
    def before(self, input):
        return {"delay": 2}

    @step(depends_on=["before"], execution="distributed", queue="nap_q", sleep="before.delay")
    def after(self, input):
        return time.time()
"""


def _worker(db_url: str, module_dir: Path, worker_id: str) -> subprocess.Popen[str]:
    """Start a real worker process on nap_q serving the Nap flow."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(module_dir), str(REPO / "python")]))
    return subprocess.Popen(
        [sys.executable, "-m", "singularity_workflow", "--database-url", db_url, "worker",
         "-q", "nap_q", "-i", "nap_flows", "--worker-id", worker_id, "--poll-interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.mark.slow
def test_a_sleep_survives_the_kill_of_its_worker(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "nap_flows.py").write_text(textwrap.dedent(SLEEP_FLOWS))
    nap = import_file(tmp_path / "nap_flows.py")
    with Client(db_url) as client, psycopg.connect(db_url, autocommit=True) as conn:
        client.register_flow(nap.Nap)
        run_id = client.start_flow("test_control_flow.nap", {})
        first = _worker(db_url, tmp_path, "first")
        second: subprocess.Popen[str] | None = None
        try:
            deadline = time.monotonic() + 20
            while True:
                row = conn.execute(
                    "select status, wake_at from workflow.step_states"
                    " where run_id = %s and step_slug = 'after'", [run_id],
                ).fetchone()
                if row is not None and row[0] == "started":
                    break
                assert time.monotonic() < deadline, "the step before the sleep never completed"
                assert first.poll() is None, first.communicate()[0]
                time.sleep(0.05)
            wake_at = row[1]
            assert wake_at is not None
            status = client.get_run_status(run_id)
            assert status.steps[1].sleeping_until == wake_at
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second = _worker(db_url, tmp_path, "second")
            deadline = time.monotonic() + 30
            while client.get_run_status(run_id).status == "in_progress":
                assert time.monotonic() < deadline, "the run did not finish after the sleep"
                assert second.poll() is None, second.communicate()[0]
                time.sleep(0.1)
            task = conn.execute(
                "select status, attempts_count, worker_id, started_at from workflow.tasks"
                " where run_id = %s and step_slug = 'after'", [run_id],
            ).fetchone()
            assert task is not None
            assert task[:3] == ("completed", 1, "second")
            assert task[3] >= wake_at, "the sleeping task was claimed before its wake time"
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_the_dashboard_approves_and_rejects_a_waiting_run(db_url: str) -> None:
    import re
    import warnings

    from singularity_workflow.dashboard import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    with Client(db_url) as client:
        client.register_flow(
            {"slug": "test_control_flow.dash", "steps": [{"slug": "gate", "wait_for": "gate"}]}
        )
        yes = client.start_flow("test_control_flow.dash", {})
        no = client.start_flow("test_control_flow.dash", {})
        with TestClient(create_app(db_url), base_url="http://localhost") as web:
            page = web.get(f"/runs/{yes}").text
            assert "gate waits for gate" in page and "Approve" in page and "Reject" in page
            found = re.search(r'name="csrf" value="([^"]+)"', page)
            assert found is not None
            token = found.group(1)
            r = web.post(f"/runs/{yes}/approve", data={"csrf": token, "step": "gate",
                         "comment": "ok"}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].endswith("done=approved")
            r = web.post(f"/runs/{no}/reject", data={"csrf": token, "step": "gate"},
                         follow_redirects=False)
            assert r.status_code == 303
            # Decided once: the buttons are gone, and a second post is refused.
            assert "waits for gate" not in web.get(f"/runs/{yes}").text
            again = web.post(f"/runs/{yes}/approve", data={"csrf": token, "step": "gate"})
            assert again.status_code == 400
            forged = web.post(f"/runs/{no}/approve", data={"csrf": "forged", "step": "gate"})
            assert forged.status_code == 403
        gate = {r: client.get_run_status(r).output["gate"] for r in (yes, no)}
        assert (gate[yes]["approved"], gate[yes]["by"], gate[yes]["comment"]) == (
            True, "dashboard", "ok")
        assert gate[no]["approved"] is False


def _branch_handler(task: Task) -> Outcome:
    """check: big when the input's n is over 10; small/big/join echo what they got."""
    if task["step_slug"] == "check":
        return ("ok", {"big": task["input"]["run"]["n"] > 10})
    if task["step_slug"] == "join":
        return ("ok", {"small": task["input"]["small"], "big": task["input"]["big"]})
    return ("ok", task["step_slug"])


@pytest.mark.slow
def test_a_condition_skips_a_branch_and_the_run_completes(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow({"slug": "test_control_flow.branch", "steps": [
            {"slug": "check", "execution": "distributed", "queue": "branch_q"},
            {"slug": "small", "depends_on": ["check"], "execution": "distributed",
             "queue": "branch_q", "condition": {"path": "check.big", "op": "eq", "value": False}},
            {"slug": "big", "depends_on": ["check"], "execution": "distributed",
             "queue": "branch_q", "condition": {"path": "check.big", "op": "eq", "value": True}},
            {"slug": "join", "depends_on": ["small", "big"], "execution": "distributed",
             "queue": "branch_q", "run_if_skipped": True},
        ]})
        inputs = [{"n": n} for n in range(40)]
        run_ids = client.start_flows("test_control_flow.branch", inputs)
        stats = drive(db_url, "branch_q", ["test_control_flow.branch"], _branch_handler,
                      drivers=4, batch=10, timeout=120)
        assert not errors_of(stats), errors_of(stats)
        for run_id, given in zip(run_ids, inputs, strict=True):
            status = client.get_run_status(run_id)
            big = given["n"] > 10
            assert status.status == "completed", status
            assert status.skipped_steps == 1 and status.percentage == 100
            by_step = {s.step: s.status for s in status.steps}
            assert by_step["big" if big else "small"] == "completed"
            assert by_step["small" if big else "big"] == "skipped"
            # The join ran and saw the skipped branch as null.
            expected = {"small": None, "big": "big"} if big else {"small": "small", "big": None}
            assert status.output == {"join": expected}


MAP_SIZE = 1000
BROKEN = {7, 123, 500, 999}


@pytest.mark.slow
def test_resuming_a_failed_map_runs_only_its_failed_elements(db_url: str) -> None:
    fixed = threading.Event()

    def handler(task: Task) -> Outcome:
        if task["step_slug"] == "src":
            return ("ok", list(range(MAP_SIZE)))
        if task["step_slug"] == "each":
            if task["item"] in BROKEN and not fixed.is_set():
                return ("fail", f"element {task['item']} is broken")
            return ("ok", task["item"] * 2)
        return ("ok", sum(task["input"]["each"]))

    with Client(db_url) as client:
        client.register_flow({"slug": "test_control_flow.map", "steps": [
            {"slug": "src", "execution": "distributed", "queue": "map_q"},
            {"slug": "each", "depends_on": ["src"], "type": "map", "execution": "distributed",
             "queue": "map_q", "max_attempts": 1},
            {"slug": "total", "depends_on": ["each"], "execution": "distributed",
             "queue": "map_q"},
        ]})
        old = client.start_flow("test_control_flow.map", {})
        # Claims of 1000 at once by one driver: every element is claimed (and handled) before
        # the first failure is reported, so exactly the broken ones fail.
        stats = drive(db_url, "map_q", ["test_control_flow.map"], handler, drivers=1,
                      batch=MAP_SIZE, timeout=120)
        assert not errors_of(stats), errors_of(stats)
        with psycopg.connect(db_url, autocommit=True) as conn:
            states = dict(conn.execute(
                "select status, count(*) from workflow.tasks"
                " where run_id = %s and step_slug = 'each' group by status", [old],
            ).fetchall())
        assert client.get_run_status(old).status == "failed"
        assert states == {"completed": MAP_SIZE - len(BROKEN), "failed": len(BROKEN)}

        fixed.set()
        new = client.resume_from_step(old, "each", reason="broken elements fixed")
        stats = drive(db_url, "map_q", ["test_control_flow.map"], handler, drivers=4,
                      batch=50, timeout=120)
        assert not errors_of(stats), errors_of(stats)
        status = client.get_run_status(new)
        assert status.status == "completed", status
        assert status.output == {"total": sum(i * 2 for i in range(MAP_SIZE))}
        assert (status.retry_of, status.resumed_from, status.resume_reason) == (
            old, "each", "broken elements fixed")
        # Only the failed elements (and the step after the map) were claimed again.
        claimed = sorted(i for s in stats for i, _ in s.claimed_ids)
        with psycopg.connect(db_url, autocommit=True) as conn:
            rerun = conn.execute(
                "select step_slug, task_index from workflow.tasks"
                " where run_id = %s and task_id = any(%s) order by step_slug, task_index",
                [new, claimed],
            ).fetchall()
            src = conn.execute(
                "select count(*) from workflow.tasks where run_id = %s and step_slug = 'src'",
                [new],
            ).fetchone()
        assert rerun == [*(("each", i) for i in sorted(BROKEN)), ("total", 0)]
        assert src == (0,), "the upstream step was carried over, not run again"


def test_flow_builder_refuses_control_options_rather_than_dropping_them(db_url: str) -> None:
    from singularity_workflow import FlowBuilder, InvalidOption

    with Client(db_url) as client:
        builder = FlowBuilder(client)
        builder.create_flow("test_control_flow.built")
        with pytest.raises(InvalidOption) as caught:
            builder.add_step("test_control_flow.built", "hold", [], wait_for="e")
        assert "wait_for" in str(caught.value)
        builder.add_step("test_control_flow.built", "plain", [])
        assert [s["slug"] for s in client.get_flow("test_control_flow.built")["steps"]] == ["plain"]
