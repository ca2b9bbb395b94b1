"""Dynamic workflows: FlowBuilder stores flows as they are built; execute_dynamic runs them.

Every test uses the module's real database and a flow name of its own. Errors are checked by
class and SQLSTATE, and each rejected call is checked to leave the stored flow as it was.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from singularity_workflow import (
    Client,
    DefinitionError,
    DuplicateStep,
    EmptyFlow,
    FlowBuilder,
    FlowExists,
    FlowNotFound,
    InvalidName,
    InvalidOption,
    MissingStepFunctions,
    RunFailed,
    SelfDependency,
    UnknownDependency,
    Worker,
    WorkflowError,
    execute_dynamic,
)
from singularity_workflow.definitions import find_handler

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture
def builder(client: Client) -> FlowBuilder:
    return FlowBuilder(client)


def new_name() -> str:
    return f"dyn.{uuid.uuid4().hex[:12]}"


def runs_of(client: Client, flow: str) -> int:
    with client.connection() as conn:
        row = conn.execute("select count(*) from workflow.runs where flow_slug = %s", [flow])
        return int(row.fetchone()[0])  # type: ignore[index]


# -- FlowBuilder -------------------------------------------------------------------------------


def test_create_flow_returns_the_id_and_add_step_stores_each_step_at_once(
    builder: FlowBuilder, client: Client, db_url: str
) -> None:
    flow = builder.create_flow(new_name(), timeout=90)
    first = builder.add_step(flow, "fetch")
    assert first["slug"] == "fetch" and first["execution"] == "local"  # code-defined default
    builder.add_step(flow, "each", ["fetch"], map=True, execution="distributed", queue="io",
                     resources={"gpu": True, "tpu": False}, max_attempts=5, timeout=30,
                     base_delay=2, start_delay=1)
    builder.add_step(flow, "save", depends_on=["each"])
    # Stored and readable from SQL by another connection, like any flow.
    with psycopg.connect(db_url, autocommit=True) as other:
        stored = other.execute("select workflow.get_flow(%s)", [flow]).fetchone()[0]  # type: ignore[index]
    assert stored["timeout"] == 90
    assert [s["slug"] for s in stored["steps"]] == ["fetch", "each", "save"]
    each = stored["steps"][1]
    assert each == {
        "slug": "each", "depends_on": ["fetch"], "type": "map", "map_over": "fetch",
        "execution": "distributed", "queue": "io", "resources": ["gpu"], "max_attempts": 5,
        "timeout": 30, "base_delay": 2, "start_delay": 1,
    }
    assert stored["steps"][2]["depends_on"] == ["each"]


def test_map_named_dependency_is_added_to_depends_on(builder: FlowBuilder) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "a")
    builder.add_step(flow, "b")
    step = builder.add_step(flow, "each", ["b"], map="a")
    assert step["type"] == "map" and step["map_over"] == "a"
    assert step["depends_on"] == ["a", "b"]


def test_root_map_step_maps_over_the_run_input(builder: FlowBuilder, client: Client) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "double", map=True)
    builder.add_step(flow, "sum", ["double"])
    result = execute_dynamic(flow, [1, 2, 3], {"double": lambda x: x * 2,
                                                 "sum": lambda i: sum(i["double"])},
                             client=client, timeout=30)
    assert result.output == {"sum": 12}


BAD_ADDS: list[tuple[str, Callable[[FlowBuilder, str], Any], type[WorkflowError], str]] = [
    ("unknown workflow id", lambda b, f: b.add_step("dyn.nope", "x"), FlowNotFound, "WF002"),
    ("unknown dependency", lambda b, f: b.add_step(f, "c", ["a", "ghost"]),
     UnknownDependency, "WF003"),
    ("duplicate step", lambda b, f: b.add_step(f, "b", ["a"]), DuplicateStep, "WF004"),
    # The only cycle an incremental build can attempt; longer ones cannot be expressed
    # because dependencies must exist first (and re-adding a step to close a loop is WF004).
    ("self dependency", lambda b, f: b.add_step(f, "c", ["c"]), SelfDependency, "WF006"),
    ("closing a loop", lambda b, f: b.add_step(f, "a", ["b"]), DuplicateStep, "WF004"),
    ("invalid step name", lambda b, f: b.add_step(f, "has space"), InvalidName, "WF001"),
    ("reserved step name", lambda b, f: b.add_step(f, "run"), InvalidName, "WF001"),
    ("invalid queue name", lambda b, f: b.add_step(f, "c", execution="distributed",
                                                    queue="Bad-Queue"), InvalidName, "WF001"),
    ("unknown option", lambda b, f: b.add_step(f, "c", retries=3), InvalidOption, "WF010"),
    ("bad option value", lambda b, f: b.add_step(f, "c", max_attempts=0), InvalidOption, "WF010"),
    ("bad execution", lambda b, f: b.add_step(f, "c", execution="remote"), InvalidOption,
     "WF010"),
    ("local step with a queue", lambda b, f: b.add_step(f, "c", queue="io"), InvalidOption,
     "WF010"),
    ("map over several deps", lambda b, f: b.add_step(f, "c", ["a", "b"], map=True),
     InvalidOption, "WF010"),
]


@pytest.mark.parametrize(("case", "call", "error", "code"), BAD_ADDS,
                         ids=[c[0] for c in BAD_ADDS])
def test_add_step_errors_are_typed_and_leave_the_flow_unchanged(
    builder: FlowBuilder, client: Client, case: str, call: Callable[[FlowBuilder, str], Any],
    error: type[WorkflowError], code: str,
) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "a")
    builder.add_step(flow, "b", ["a"])
    before = client.get_flow(flow)
    with pytest.raises(error) as raised:
        call(builder, flow)
    assert raised.value.code == code
    assert client.get_flow(flow) == before


def test_create_flow_errors(builder: FlowBuilder) -> None:
    flow = builder.create_flow(new_name())
    with pytest.raises(FlowExists):
        builder.create_flow(flow)
    with pytest.raises(InvalidName):
        builder.create_flow("9 lives")
    with pytest.raises(InvalidOption):
        builder.create_flow(new_name(), timeout=0)


def test_a_step_added_to_a_flow_that_has_runs_makes_a_new_version(
    builder: FlowBuilder, client: Client
) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "a")
    first = execute_dynamic(flow, {}, {"a": lambda i: 1}, client=client, timeout=30)
    builder.add_step(flow, "b", ["a"])
    assert [v.version for v in client.list_flow_versions(flow)] == [2, 1]
    assert [s["slug"] for s in client.get_flow(flow, version=1)["steps"]] == ["a"]
    second = execute_dynamic(flow, {}, {"a": lambda i: 1, "b": lambda i: 2}, client=client,
                             timeout=30)
    assert client.get_run_status(first.run_id).version == 1
    assert client.get_run_status(second.run_id).version == 2


# -- execute_dynamic ---------------------------------------------------------------------------


def test_missing_functions_are_all_reported_before_anything_starts(
    builder: FlowBuilder, client: Client
) -> None:
    flow = builder.create_flow(new_name())
    for name, deps in [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])]:
        builder.add_step(flow, name, deps)
    with pytest.raises(MissingStepFunctions) as raised:
        execute_dynamic(flow, {}, {"a": lambda i: 1, "c": lambda i: 1, "bb": lambda i: 1},
                        client=client, timeout=30)
    assert raised.value.missing == ("b", "d")
    assert raised.value.code == "WF010"
    assert "b, d" in str(raised.value) and "bb" in (raised.value.hint or "")
    assert runs_of(client, flow) == 0


def test_unknown_or_empty_flows_and_non_callables_are_refused(
    builder: FlowBuilder, client: Client
) -> None:
    with pytest.raises(FlowNotFound):
        execute_dynamic("dyn.nope", {}, {}, client=client)
    empty = builder.create_flow(new_name())
    with pytest.raises(EmptyFlow):
        execute_dynamic(empty, {}, {}, client=client)
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "a")
    with pytest.raises(InvalidOption):
        execute_dynamic(flow, {}, {"a": "not a function"}, client=client)  # type: ignore[dict-item]
    assert runs_of(client, flow) == 0


def test_a_function_asking_for_a_context_wrongly_is_refused_naming_it_before_a_run(
    builder: FlowBuilder, client: Client
) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "a")

    def two_contexts(input: Any, ctx: Any, *, other: Any) -> None: ...

    with pytest.raises(DefinitionError, match=rf"{flow}, step a: handler .*two_contexts") as exc:
        execute_dynamic(flow, {}, {"a": two_contexts}, client=client, timeout=30)
    assert exc.value.code == "WF010"
    assert runs_of(client, flow) == 0


def test_runs_like_a_code_defined_workflow_sync_async_and_map(
    builder: FlowBuilder, client: Client
) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "fetch")
    builder.add_step(flow, "each", ["fetch"], map=True)
    builder.add_step(flow, "save", ["each"])

    async def each(item: int) -> int:
        await asyncio.sleep(0)
        return item * 10

    result = execute_dynamic(
        flow, {"n": 3},
        {"fetch": lambda i: list(range(i["run"]["n"])), "each": each,
         "save": lambda i: {"saved": i["each"]}},
        client=client, timeout=30,
    )
    assert result.output == {"save": {"saved": [0, 10, 20]}}
    assert client.get_run_status(result.run_id).status == "completed"


def test_retries_apply_to_dynamic_steps(builder: FlowBuilder, client: Client) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "flaky", max_attempts=3, base_delay=0)
    calls: list[int] = []

    def flaky(_: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return "ok"

    result = execute_dynamic(flow, {}, {"flaky": flaky}, client=client, timeout=30)
    assert result.output == {"flaky": "ok"} and len(calls) == 3


def test_a_failing_step_fails_the_run(builder: FlowBuilder, client: Client) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "boom", max_attempts=1)

    def boom(_: Any) -> None:
        raise ValueError("bad data")

    with pytest.raises(RunFailed) as raised:
        execute_dynamic(flow, {}, {"boom": boom}, client=client, timeout=30)
    assert raised.value.step == "boom" and "bad data" in (raised.value.error or "")


def test_distributed_steps_run_on_a_worker_of_this_process(
    builder: FlowBuilder, client: Client, db_url: str
) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "prep")
    builder.add_step(flow, "heavy", ["prep"], execution="distributed", queue="dyn_remote")
    builder.add_step(flow, "done", ["heavy"])
    ran_in: dict[str, str] = {}

    def heavy(i: dict[str, Any]) -> int:
        ran_in["heavy"] = threading.current_thread().name
        return int(i["prep"]) + 1

    worker = Worker(db_url, ["dyn_remote"], poll_interval=1, worker_id="dyn-worker")
    worker.run_in_thread()
    try:
        result = execute_dynamic(flow, {}, {"prep": lambda i: 41, "heavy": heavy,
                                            "done": lambda i: i["heavy"]},
                                 client=client, timeout=30)
    finally:
        worker.stop()
        worker.join(10)
    assert result.output == {"done": 42}
    # The handler was found by the worker through the registry, under the flow's name.
    assert find_handler(flow, "heavy") is heavy
    with client.connection() as conn:
        row = conn.execute(
            "select worker_id from workflow.tasks where run_id = %s and step_slug = 'heavy'",
            [result.run_id],
        ).fetchone()
    assert row is not None and row[0] == "dyn-worker"


def test_a_dynamic_run_can_be_cancelled_while_a_step_runs(
    builder: FlowBuilder, client: Client, db_url: str
) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow, "slow")
    builder.add_step(flow, "after", ["slow"])
    started = threading.Event()
    release = threading.Event()

    def slow(_: Any) -> str:
        started.set()
        release.wait(20)
        return "late"

    def cancel() -> None:
        assert started.wait(20)
        with psycopg.connect(db_url, autocommit=True) as other:
            run_id = other.execute(
                "select run_id from workflow.runs where flow_slug = %s", [flow]
            ).fetchone()[0]  # type: ignore[index]
            other.execute("select workflow.cancel_workflow_run(%s, 'stop it')", [run_id])
        release.set()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    with pytest.raises(RunFailed) as raised:
        execute_dynamic(flow, {}, {"slow": slow, "after": lambda i: "never"},
                        client=client, timeout=30)
    canceller.join(10)
    assert "stop it" in str(raised.value)
    with client.connection() as conn:
        cancelled_at, after = conn.execute(
            "select r.cancelled_at, s.status from workflow.runs r join workflow.step_states s"
            " on s.run_id = r.run_id and s.step_slug = 'after' where r.run_id = %s",
            [raised.value.run_id],
        ).fetchone()  # type: ignore[misc]
    assert cancelled_at is not None and after != "completed"


# -- the example, as documented ----------------------------------------------------------------


def _env(db_url: str) -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=db_url, PYTHONPATH=str(REPO / "python"))


@pytest.mark.slow
def test_dynamic_flow_example_runs_locally_and_with_a_worker_process(db_url: str) -> None:
    local = subprocess.run([sys.executable, "examples/dynamic_flow.py", "abc"], cwd=REPO,
                           env=_env(db_url), capture_output=True, text=True, timeout=60)
    assert local.returncode == 0, local.stderr
    assert '"total": 6' in local.stdout

    script = Path(sys.executable).parent / "singularity-workflow"
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "singularity_workflow"]
    worker = subprocess.Popen(
        [*cli, "worker", "-q", "default", "-i", "examples.dynamic_flow", "--poll-interval", "1"],
        cwd=REPO, env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        done = subprocess.run(
            [sys.executable, "examples/dynamic_flow.py", "--distributed", "ab cd"],
            cwd=REPO, env=_env(db_url), capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert '"total": 10' in done.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        out = worker.communicate(timeout=20)[0]
    assert worker.returncode == 0, out
    # The two map tasks of `score` ran in the worker process, found by the flow's name.
    assert "2 completed" in out, out


def test_add_step_names_the_flow_flow_slug_or_workflow_id(builder: FlowBuilder) -> None:
    flow = builder.create_flow(new_name())
    builder.add_step(flow_slug=flow, step_name="fetch")
    builder.add_step(workflow_id=flow, step_name="save", depends_on=["fetch"])
    builder.add_step(flow, "notify", ["save"])
    assert [s["slug"] for s in builder.get_flow(flow)["steps"]] == ["fetch", "save", "notify"]
    with pytest.raises(TypeError, match="not both"):
        builder.add_step(flow, "again", workflow_id=flow)
