"""Errors off the documented path: wrong types, no schema, hints, PostgreSQL's value limits.

Each test reproduces a mistake a new user makes on the first day and checks that the error
names what was wrong and how to fix it, before anything reaches the database where it can.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from singularity_workflow import (
    Client,
    InvalidOption,
    InvalidState,
    PayloadTooLarge,
    RunResult,
    SchemaNotInstalled,
    Workflow,
    execute,
    execute_dynamic,
    step,
)
from singularity_workflow._db import Operation, first_value
from singularity_workflow._errors import error_from_psycopg
from singularity_workflow._listen import listen, notify_only, send_with_notify, unlisten
from singularity_workflow._operations import definitions, messaging, runs
from singularity_workflow.cli import main

#: Any I/O on this URL fails at once: a check that passes it has run before any I/O.
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=1"


class Tiny(Workflow):
    """A one-step workflow for the argument checks of execute()."""

    slug = "tests.errors.tiny"

    @step()
    def only(self, input: Any) -> Any:
        """Return the input."""
        return input


# ----- point 7: wrong types name the argument, what was given and what is expected -------------


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda c: send_with_notify(123, {}, client=c), ["channel", "a str", "int 123"]),
        (lambda c: notify_only("ch", {"a": 1}, client=c), ["payload", "a str", "dict"]),
        (lambda c: c.get_run_status(None), ["run_id", "UUID", "NoneType None"]),
        (lambda c: c.read_channel("ch", after_id="3"), ["after_id", "an int", "str '3'"]),
        (lambda c: c.start_flow(42, {}), ["flow_slug", "a str", "int 42"]),
        (lambda c: c.start_flows("f", {"a": 1}), ["inputs", "a list", "dict"]),
        (lambda c: c.cancel_workflow_run(uuid.uuid4(), force="yes"), ["force", "a bool"]),
        (lambda c: c.add_step("f", "b", "a"), ["depends_on", "a list", "str 'a'"]),
        (lambda c: c.get_flow(None), ["slug", "a str", "NoneType"]),
        (lambda c: c.list_workflow_runs(limit="10"), ["limit", "an int"]),
        (lambda c: c.ack_message("ch", True), ["message_id", "an int", "bool True"]),
        (lambda c: listen(123, client=c), ["channel", "a str", "int 123"]),
        (lambda c: c.register_flow(123), ["definition", "Workflow subclass", "int 123"]),
        (lambda c: c.pause_workflow_run(7), ["run_id", "UUID", "int 7"]),
        (lambda c: c.get_task_graph(None), ["graph_id", "UUID", "NoneType"]),
        (lambda c: c.list_workers(include_dead="yes"), ["include_dead", "a bool"]),
    ],
)
def test_a_wrong_type_to_a_public_function_is_a_type_error_naming_the_argument(
    call: Any, words: list[str]
) -> None:
    client = Client(UNREACHABLE)
    with pytest.raises(TypeError) as caught:
        call(client)
    for word in words:
        assert word in str(caught.value)


def test_unlisten_of_a_channel_name_says_it_takes_the_listener() -> None:
    with pytest.raises(TypeError, match="listener must be the Listener that listen"):
        unlisten("x")  # type: ignore[arg-type]


def test_execute_refuses_data_and_bad_timeouts_before_any_run_exists() -> None:
    client = Client(UNREACHABLE)
    with pytest.raises(TypeError, match="workflow must be a Workflow subclass.*int 123"):
        execute(123, {}, client=client)
    with pytest.raises(TypeError, match="use execute_dynamic"):
        execute("tests.errors.tiny", {}, client=client)
    for timeout in (0, -1, float("nan")):
        with pytest.raises(InvalidOption, match="timeout must be above 0"):
            execute(Tiny, {}, timeout=timeout, client=client)
    with pytest.raises(TypeError, match="timeout must be a number"):
        execute(Tiny, {}, timeout="30", client=client)  # type: ignore[arg-type]
    with pytest.raises(InvalidOption, match="concurrency"):
        execute(Tiny, {}, concurrency=0, client=client)


def test_execute_dynamic_checks_its_step_functions_before_any_io() -> None:
    client = Client(UNREACHABLE)
    with pytest.raises(TypeError, match="step_functions must be a dict.*NoneType"):
        execute_dynamic("f", {}, None, client=client)  # type: ignore[arg-type]
    with pytest.raises(InvalidOption, match="timeout must be above 0"):
        execute_dynamic("f", {}, {}, timeout=0, client=client)
    with pytest.raises(TypeError, match="workflow_id must be a str"):
        execute_dynamic(Tiny, {}, {}, client=client)  # type: ignore[arg-type]


def test_operations_check_their_arguments_where_they_are_built() -> None:
    # The checks live in the operations, so every client (sync, async, module functions) has them.
    with pytest.raises(TypeError, match="channel must be a str"):
        messaging.send_with_notify(123, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run_ids\\[\\] must be a UUID"):
        runs.start_flows("f", [{}], run_ids=[7])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="definition must be a dict"):
        definitions.register_flow(["not", "a", "flow"])  # type: ignore[arg-type]


# ----- point 8: a database without the schema ---------------------------------------------------


def test_a_database_without_the_schema_says_run_migrate(
    fresh_database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_database()
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with Client(url) as client, pytest.raises(SchemaNotInstalled) as caught:
        client.get_run_status(uuid.uuid4())
    text = str(caught.value)
    assert f"the workflow schema is not installed in database '{name}'" in text
    assert "run `singularity-workflow migrate`" in text

    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    status = runner.invoke(main, ["status", "--database-url", url, str(uuid.uuid4())])
    assert status.exit_code == 1
    assert status.stderr.startswith("error: the workflow schema is not installed in database")
    assert "Traceback" not in status.output

    worker = runner.invoke(main, ["worker", "--database-url", url, "--queue", "q"])
    assert worker.exit_code == 3, worker.output
    assert "run `singularity-workflow migrate`" in worker.stderr


# ----- point 9: str(error) shows the hint, worded for Python ------------------------------------


def test_str_of_an_error_includes_its_hint_in_python_words(db_url: str) -> None:
    with Client(db_url) as client:
        client.register_flow(
            {"slug": "tests.errors.one", "steps": [{"slug": "a", "execution": "distributed",
                                                    "queue": "errors_q"}]}
        )
        run_id = client.start_flow("tests.errors.one", {})
        [task] = client.claim_tasks("errors_q", 1, for_run_id=run_id)
        client.complete_tasks([(task.task_id, task.attempt, {})])
        with pytest.raises(InvalidState) as caught:
            client.cancel_workflow_run(run_id)
    error = caught.value
    assert error.hint is not None and "force=True" in error.hint
    assert "=>" not in error.hint
    assert error.sql_hint == "Pass force => true to mark it cancelled anyway."
    assert str(error) == f"{error.message}\nhint: {error.hint}"


# ----- point 10: PostgreSQL's own value limits --------------------------------------------------


def test_a_value_over_the_jsonb_limit_is_payload_too_large_with_the_limit() -> None:
    # What PostgreSQL raises for a jsonb array over its limit (building one takes 256 MiB).
    raw = psycopg.errors.ProgramLimitExceeded(
        "total size of jsonb array elements exceeds the maximum of 268435455 bytes"
    )
    mapped = error_from_psycopg(raw)
    assert isinstance(mapped, PayloadTooLarge)
    assert mapped.code == "54000"
    assert mapped.hint is not None and "268435455 bytes" in mapped.hint


def test_a_server_side_limit_through_the_client_is_payload_too_large(db_url: str) -> None:
    # repeat() refuses a 1 GB result before allocating it: the same SQLSTATE, cheaply.
    with Client(db_url) as client, pytest.raises(PayloadTooLarge) as caught:
        client.call(Operation("select repeat('x', 1073741824)", [], first_value))
    assert caught.value.code == "54000" and "1 GB" in str(caught.value)


# ----- point 12: RunResult unpacks like the Elixir library's {:ok, result, run_id} --------------


def test_run_result_unpacks_as_output_then_run_id() -> None:
    run_id = uuid.uuid4()
    result = RunResult(run_id, {"only": 1})
    output, rid = result
    assert (output, rid) == ({"only": 1}, run_id)
    assert (result.output, result.run_id) == ({"only": 1}, run_id)
