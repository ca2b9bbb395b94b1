"""The Client against a real database: connections, error mapping, and the task calls by hand.

No worker runs here: tests claim, complete and fail tasks themselves through the Client, so
every state change the SQL core makes is one the test caused and can check. Each test uses its
own flow slugs and queue names, as the module shares one database.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest

from singularity_workflow import (
    Client,
    DependencyCycle,
    DuplicateStep,
    EmptyFlow,
    FlowNotFound,
    InvalidInput,
    InvalidName,
    InvalidOption,
    RunIdConflict,
    RunNotFound,
    SelfDependency,
    UnknownDependency,
    VersionNotFound,
    Workflow,
    WorkflowError,
    step,
)
from singularity_workflow._db import Operation, first_value, no_result
from singularity_workflow._errors import error_from_psycopg

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=1"


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    """Yield a client over the module's database (its own connection, closed after the test)."""
    with Client(db_url) as c:
        yield c


def three_steps(slug: str, queue: str, **options: Any) -> dict[str, Any]:
    """Fetch -> process -> save, all distributed on ``queue`` (so tests can claim them)."""
    common = {"execution": "distributed", "queue": queue, **options}
    return {
        "slug": slug,
        "steps": [
            {"slug": "fetch", **common},
            {"slug": "process", "depends_on": ["fetch"], **common},
            {"slug": "save", "depends_on": ["process"], **common},
        ],
    }


# -- error mapping -----------------------------------------------------------------------------


def _bad_register(steps: list[dict[str, Any]], slug: str = "tests.bad") -> Any:
    return lambda c: c.register_flow({"slug": slug, "steps": steps})


ERROR_CASES: list[tuple[str, Any, type[WorkflowError], str, str | None]] = [
    (
        "invalid name",
        _bad_register([{"slug": "x"}], "bad slug"),
        InvalidName,
        "WF001",
        "must match",
    ),
    ("flow not found", lambda c: c.get_flow("tests.ghost"), FlowNotFound, "WF002", None),
    (
        "unknown dependency",
        _bad_register([{"slug": "a", "depends_on": ["ghost"]}]),
        UnknownDependency,
        "WF003",
        None,
    ),
    ("duplicate", _bad_register([{"slug": "a"}, {"slug": "a"}]), DuplicateStep, "WF004", None),
    (
        "cycle",
        _bad_register([{"slug": "a", "depends_on": ["b"]}, {"slug": "b", "depends_on": ["a"]}]),
        DependencyCycle,
        "WF005",
        None,
    ),
    (
        "self dependency",
        _bad_register([{"slug": "a", "depends_on": ["a"]}]),
        SelfDependency,
        "WF006",
        None,
    ),
    ("bad qty", lambda c: c.claim_tasks("default", 0), InvalidOption, "WF010", None),
    ("no steps", _bad_register([]), EmptyFlow, "WF016", None),
    ("run not found", lambda c: c.get_run_status(uuid.uuid4()), RunNotFound, "WF011", None),
]


@pytest.mark.parametrize(
    ("call", "cls", "code", "hint"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_wf_sqlstates_become_typed_exceptions(
    client: Client, call: Any, cls: type[WorkflowError], code: str, hint: str | None
) -> None:
    with pytest.raises(cls) as err:
        call(client)
    assert err.value.code == code
    assert err.value.message
    # str() carries the hint too, so a traceback shows it.
    shown = err.value.message + (f"\nhint: {err.value.hint}" if err.value.hint else "")
    assert str(err.value) == shown
    if hint is None:
        assert err.value.hint is None
    else:
        assert err.value.hint is not None and hint in err.value.hint
    if code != "WF011":  # RunNotFound above is raised by the client itself (a missing row)
        assert isinstance(err.value.__cause__, psycopg.Error)
        assert err.value.__cause__.sqlstate == code


def test_input_of_the_wrong_type_carries_the_servers_hint(client: Client) -> None:
    client.register_flow(three_steps("tests.input_type", "q_input_type"))
    with pytest.raises(InvalidInput) as err:
        client.start_flow("tests.input_type", [1, 2])
    assert err.value.code == "WF009"
    assert err.value.hint is not None and "Wrap the value" in err.value.hint
    assert "(SQLSTATE WF009)\nhint: " in err.value.describe()


def test_a_different_shape_under_a_registered_slug_is_a_new_current_version(client: Client) -> None:
    client.register_flow(three_steps("tests.shape", "q_shape"))
    client.register_flow(three_steps("tests.shape", "q_shape", max_attempts=9))
    versions = client.list_flow_versions("tests.shape")
    assert [(v.version, v.is_current) for v in versions] == [(2, True), (1, False)]
    assert client.get_flow("tests.shape", version=1)["steps"][0]["max_attempts"] != 9
    with pytest.raises(VersionNotFound) as err:
        client.get_flow("tests.shape", version=3)
    assert err.value.code == "WF020"


def test_a_run_id_of_another_flow_is_a_conflict(client: Client) -> None:
    client.register_flow(three_steps("tests.conflict_a", "q_conflict"))
    client.register_flow(three_steps("tests.conflict_b", "q_conflict"))
    run_id = client.start_flow("tests.conflict_a", {}, run_id=uuid.uuid4())
    assert client.start_flow("tests.conflict_a", {}, run_id=run_id) == run_id  # idempotent
    with pytest.raises(RunIdConflict):
        client.start_flow("tests.conflict_b", {}, run_id=run_id)
    with pytest.raises(RunIdConflict) as err:  # same flow, another input: not a repeat
        client.start_flow("tests.conflict_a", {"other": 1}, run_id=run_id)
    assert err.value.code == "WF012"


def test_start_flows_starts_a_batch_in_order_idempotently_and_all_or_nothing(
    client: Client,
) -> None:
    client.register_flow(three_steps("tests.batch", "q_batch"))
    known = uuid.uuid4()
    ids = client.start_flows(
        "tests.batch", [{"i": 0}, {"i": 1}, {"i": 2}], run_ids=[None, known, None]
    )
    assert len(ids) == 3 and ids[1] == known and len(set(ids)) == 3
    with client.connection() as conn:
        inputs = conn.execute(
            "select run_id, input from workflow.runs where run_id = any(%s)", [ids]
        ).fetchall()
        roots = conn.execute(
            "select count(*) from workflow.tasks where run_id = any(%s)", [ids]
        ).fetchone()
    assert {r: i["i"] for r, i in inputs} == {ids[0]: 0, ids[1]: 1, ids[2]: 2}
    assert roots == (3,)  # each run's root step was enqueued, once
    # A repeat with the same run id and input starts nothing new for it; another input under
    # that id is a conflict.
    assert client.start_flows("tests.batch", [{"i": 1}], run_ids=[known]) == [known]
    with pytest.raises(RunIdConflict):
        client.start_flows("tests.batch", [{"i": 9}], run_ids=[known])
    # One bad input fails the whole batch, naming its position, and stores nothing.
    with pytest.raises(InvalidInput) as err:
        client.start_flows("tests.batch", [{"i": 3}, ["not", "an", "object"]])
    assert "input 2" in err.value.message
    with client.connection() as conn:
        count = conn.execute(
            "select count(*) from workflow.runs where flow_slug = 'tests.batch'"
        ).fetchone()
    assert count == (3,)


def test_an_unknown_wf_code_maps_to_the_base_class_and_others_are_left_alone(conn: Any) -> None:
    with pytest.raises(psycopg.Error) as raised:
        conn.execute("do $$ begin raise exception 'new' using errcode = 'WF999'; end $$")
    mapped = error_from_psycopg(raised.value)
    assert type(mapped) is WorkflowError and mapped.code == "WF999"
    with pytest.raises(psycopg.errors.DivisionByZero) as other:
        conn.execute("select 1 / 0")
    assert error_from_psycopg(other.value) is None
    client = Client(conn)
    with pytest.raises(psycopg.errors.UndefinedTable):
        client.call(Operation("select * from no_such_table", [], no_result))


def test_errors_survive_pickling_with_their_code_and_hint(client: Client) -> None:
    with pytest.raises(WorkflowError) as err:
        client.register_flow({"slug": "bad slug", "steps": [{"slug": "a"}]})
    copy = pickle.loads(pickle.dumps(err.value))
    assert (type(copy), copy.code, copy.message, copy.hint) == (
        InvalidName,
        "WF001",
        err.value.message,
        err.value.hint,
    )


# -- where connections come from ---------------------------------------------------------------


def test_constructing_a_client_does_no_io_and_the_first_call_fails() -> None:
    client = Client(UNREACHABLE)  # nothing listens on port 1
    assert client.conninfo == UNREACHABLE
    with pytest.raises(psycopg.OperationalError):
        client.list_flows()


def test_without_a_database_the_client_reads_database_url_at_first_use(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    client = Client()
    assert client.conninfo is None
    with pytest.raises(WorkflowError, match="DATABASE_URL"):
        client.list_flows()
    monkeypatch.setenv("DATABASE_URL", db_url)  # set after construction: still picked up
    assert client.conninfo == db_url
    client.register_flow(three_steps("tests.env", "q_env"))
    assert "tests.env" in {f["slug"] for f in client.list_flows()}
    client.close()


def test_a_client_over_a_connection_string_reuses_one_connection(client: Client) -> None:
    pids = {client.call(Operation("select pg_backend_pid()", [], first_value)) for _ in range(3)}
    assert len(pids) == 1
    with client.connection() as conn:
        conn.close()  # a lost connection is replaced on the next call
    assert client.call(Operation("select 1", [], list)) == [(1,)]


def test_a_client_over_an_autocommit_connection_uses_it(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        client = Client(conn)
        pid = conn.info.backend_pid
        assert client.call(Operation("select pg_backend_pid()", [], list)) == [(pid,)]
        assert "dbname=" in (client.conninfo or "")
        with psycopg.connect(client.conninfo or "") as other:
            assert other.info.dbname == conn.info.dbname
        client.register_flow(three_steps("tests.given_conn", "q_given_conn"))
        client.close()
        assert not conn.closed  # a given connection is the caller's to close


def test_a_manual_commit_connection_gets_one_transaction_per_call_or_joins_the_callers(
    db_url: str,
) -> None:
    with psycopg.connect(db_url) as conn, psycopg.connect(db_url, autocommit=True) as observer:
        client = Client(conn)
        client.register_flow(three_steps("tests.manual", "q_manual"))
        # Committed by the call itself: another session sees it.
        assert observer.execute(
            "select count(*) from workflow.flows where flow_slug = 'tests.manual'"
        ).fetchone() == (1,)
        # Inside the caller's transaction, a rollback takes the run back with it.
        with pytest.raises(RuntimeError), conn.transaction():
            run_id = client.start_flow("tests.manual", {})
            raise RuntimeError("caller changes its mind")
        assert (
            observer.execute("select 1 from workflow.runs where run_id = %s", [run_id]).fetchone()
            is None
        )


def test_a_client_over_a_pool_borrows_connections(db_url: str) -> None:
    with psycopg_pool.ConnectionPool(db_url, min_size=1, max_size=2, open=True) as pool:
        client = Client(pool)
        client.register_flow(three_steps("tests.pool", "q_pool"))
        assert client.get_flow("tests.pool")["slug"] == "tests.pool"
        run_id = client.start_flow("tests.pool", {"n": 1})
        assert client.get_run_status(run_id).status == "in_progress"
        with psycopg.connect(client.conninfo or "") as other:
            assert other.execute(
                "select 1 from workflow.runs where run_id = %s", [run_id]
            ).fetchone()


def test_client_rejects_what_is_not_a_database() -> None:
    with pytest.raises(TypeError):
        Client(42)  # type: ignore[arg-type]


# -- definitions -------------------------------------------------------------------------------


class Idempotent(Workflow):
    """Registered twice: the second registration is a no-op."""

    slug = "tests.Idempotent"

    @step(execution="distributed", queue="q_idem")
    def first(self, input: Any) -> Any:
        """Return the input."""
        return input

    @step(depends_on=["first"], map=True, execution="distributed", queue="q_idem")
    def each(self, item: Any) -> Any:
        """Return the element."""
        return item


def test_register_flow_with_a_workflow_class_is_idempotent(client: Client) -> None:
    assert client.register_flow(Idempotent) == "tests.Idempotent"
    assert client.register_flow(Idempotent) == "tests.Idempotent"
    stored = client.get_flow("tests.Idempotent")
    assert [s["slug"] for s in stored["steps"]] == ["first", "each"]
    assert stored["steps"][1]["type"] == "map"
    listed = {f["slug"]: f for f in client.list_flows()}
    assert listed["tests.Idempotent"]["steps"] == 2


# -- the task calls, driven by hand -----------------------------------------------------------


def test_a_three_step_flow_round_trip_through_claim_and_complete(client: Client) -> None:
    client.register_flow(three_steps("tests.round_trip", "q_round_trip"))
    run_id = client.start_flow("tests.round_trip", {"user_id": 123})
    assert client.claim_tasks("q_other_queue") == []

    (fetch,) = client.claim_tasks("q_round_trip", 10, worker_id="tester")
    assert (fetch.run_id, fetch.flow_slug, fetch.step_slug) == (run_id, "tests.round_trip", "fetch")
    assert (fetch.attempt, fetch.task_index, fetch.item) == (1, 0, None)
    assert fetch.input == {"run": {"user_id": 123}}
    assert client.claim_tasks("q_round_trip") == []  # nothing else is ready yet
    assert client.complete_tasks([(fetch.task_id, fetch.attempt, {"data": "x"})]) == {
        fetch.task_id: True
    }
    # A second report of the same attempt is ignored, not counted twice.
    assert client.complete_tasks([(fetch.task_id, fetch.attempt, {"data": "y"})]) == {
        fetch.task_id: False
    }
    progress = client.get_run_status(run_id)
    assert (progress.completed_steps, progress.total_steps) == (1, 3)
    assert progress.percentage == 33.3
    assert [s.status for s in progress.steps] == ["completed", "started", "created"]

    (process,) = client.claim_tasks("q_round_trip")
    assert process.input == {"run": {"user_id": 123}, "fetch": {"data": "x"}}
    client.complete_tasks([(process.task_id, process.attempt, {"result": "X"})])
    (save,) = client.claim_tasks("q_round_trip")
    assert save.input["process"] == {"result": "X"}
    client.complete_tasks([(save.task_id, save.attempt, {"saved": True})])

    done = client.get_run_status(run_id)
    assert done.status == "completed"
    assert done.completed_at is not None
    assert (done.completed_steps, done.percentage) == (3, 100.0)
    assert done.output == {"save": {"saved": True}}


def test_map_tasks_carry_their_item(client: Client) -> None:
    client.register_flow(
        {
            "slug": "tests.map_items",
            "steps": [
                {"slug": "each", "type": "map", "execution": "distributed", "queue": "q_map"}
            ],
        }
    )
    run_id = client.start_flow("tests.map_items", ["a", "b", "c"])
    tasks = sorted(client.claim_tasks("q_map", 10), key=lambda t: t.task_index)
    assert [(t.task_index, t.item) for t in tasks] == [(0, "a"), (1, "b"), (2, "c")]
    result = client.complete_tasks([(t.task_id, t.attempt, t.item.upper()) for t in tasks])
    assert all(result.values()) and len(result) == 3
    assert client.get_run_status(run_id).output == {"each": ["A", "B", "C"]}


def test_fail_tasks_retries_then_fails_the_run_and_ignores_stale_reports(client: Client) -> None:
    client.register_flow(three_steps("tests.failing", "q_failing", max_attempts=2, base_delay=0))
    run_id = client.start_flow("tests.failing", {})
    (first,) = client.claim_tasks("q_failing")
    assert client.fail_tasks([(first.task_id, first.attempt, "boom 1")]) == {first.task_id: "retry"}
    (second,) = client.claim_tasks("q_failing")
    assert (second.task_id, second.attempt) == (first.task_id, 2)
    # The first attempt's token is stale now: its reports change nothing.
    assert client.fail_tasks([(first.task_id, 1, "late")]) == {first.task_id: "stale"}
    assert client.complete_tasks([(first.task_id, 1, {})]) == {first.task_id: False}
    assert client.fail_tasks([(second.task_id, 2, "boom\x00 2")]) == {second.task_id: "failed"}

    run = client.get_run_status(run_id)
    assert run.status == "failed"
    assert run.failed_step == "fetch"
    assert run.error is not None and "boom" in run.error
    assert run.steps[0].status == "failed"
    assert client.claim_tasks("q_failing") == []


def test_extend_leases_moves_the_visibility_deadline(client: Client, conn: Any) -> None:
    client.register_flow(three_steps("tests.leases", "q_leases", timeout=5))
    client.start_flow("tests.leases", {})
    (task,) = client.claim_tasks("q_leases")

    def vt_in_seconds() -> float:
        row = conn.execute(
            "select extract(epoch from q.vt - clock_timestamp()) from pgmq.q_q_leases q"
            " join workflow.tasks t on t.message_id = q.msg_id where t.task_id = %s",
            [task.task_id],
        ).fetchone()
        return float(row[0])

    assert vt_in_seconds() <= 5
    assert client.extend_leases([(task.task_id, task.attempt)], 300) == {task.task_id: True}
    assert 290 < vt_in_seconds() <= 300
    # A wrong attempt or a finished task is not extended: the worker should stop.
    assert client.extend_leases([(task.task_id, task.attempt + 1)], 300) == {task.task_id: False}
    client.complete_tasks([(task.task_id, task.attempt, None)])
    assert client.extend_leases([(task.task_id, task.attempt)], 300) == {task.task_id: False}
    with pytest.raises(InvalidOption):
        client.extend_leases([(task.task_id, task.attempt)], 0)


def test_hot_calls_use_the_connection_they_are_given(db_url: str) -> None:
    setup = Client(db_url)
    setup.register_flow(three_steps("tests.given", "q_given"))
    run_id = setup.start_flow("tests.given", {})
    setup.close()
    # This client cannot reach any database on its own: every call below must use `conn`.
    client = Client(UNREACHABLE)
    with psycopg.connect(db_url, autocommit=True) as conn:
        (task,) = client.claim_tasks("q_given", 5, worker_id="w1", conn=conn)
        assert task.run_id == run_id
        assert client.extend_leases([(task.task_id, 1)], 60, conn=conn) == {task.task_id: True}
        assert client.complete_tasks([(task.task_id, 1, {"ok": 1})], conn=conn) == {
            task.task_id: True
        }
        (nxt,) = client.claim_tasks("q_given", conn=conn)
        assert client.fail_tasks([(nxt.task_id, 1, "x")], conn=conn) == {nxt.task_id: "retry"}
    assert client.complete_tasks([], conn=None) == {}  # empty batches send nothing


def test_outputs_that_are_not_json_fail_before_any_sql() -> None:
    client = Client(UNREACHABLE)  # any SQL would raise OperationalError instead
    for bad in (object(), float("nan"), {"s": "nul \x00 byte"}, {1j: 2}):
        with pytest.raises(TypeError, match="output of task 7"):
            client.complete_tasks([(7, 1, bad)])
    with pytest.raises(TypeError, match="run input"):
        client.start_flow("x", {"when": object()})


def test_resources_filter_claims(client: Client) -> None:
    client.register_flow(three_steps("tests.resources", "q_res", resources=["gpu"]))
    client.start_flow("tests.resources", {})
    assert client.claim_tasks("q_res", resources=["cpu"]) == []
    (task,) = client.claim_tasks("q_res", resources=["gpu", "cpu"])
    assert task.step_slug == "fetch"
