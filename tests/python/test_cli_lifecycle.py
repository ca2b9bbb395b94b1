"""The lifecycle commands: status, runs (table and --json), cancel, pause, resume, retry.

Driven through click's CliRunner against the module's database. Runs are moved along by hand
(claim, complete, fail through the client), so no worker is needed and nothing is timing-bound.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner, Result

from singularity_workflow import Client
from singularity_workflow._db import Operation, no_result
from singularity_workflow.cli import main

FLOW = {
    "slug": "cli_lc",
    "steps": [
        {"slug": "a", "execution": "distributed", "queue": "cli_lc", "max_attempts": 1},
        {"slug": "b", "execution": "distributed", "depends_on": ["a"], "queue": "cli_lc"},
    ],
}
OTHER = {"slug": "cli_lc_other", "steps": [{"slug": "only", "execution": "distributed",
                                            "queue": "cli_lc_other"}]}


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        c.register_flow(FLOW)
        c.register_flow(OTHER)
        yield c


@pytest.fixture
def cli(db_url: str) -> Any:
    """Invoke the CLI on the module's database: ``cli("runs", "--json")``."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--database-url", db_url, *args])

    return invoke


def fail_step_a(client: Client, run_id: UUID) -> None:
    """Fail the run's step a (its only attempt), which fails the run."""
    [task] = [t for t in client.claim_tasks("cli_lc", 100, for_run_id=run_id)]
    assert client.fail_tasks([(task.task_id, task.attempt, "ValueError: bad row")]) == {
        task.task_id: "failed"
    }


def test_status_prints_the_run_status_json(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc", {"n": 1})
    result = cli("status", str(run_id))
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["run_id"] == str(run_id)
    assert (status["status"], status["state"]) == ("in_progress", "running")
    assert (status["total_steps"], status["completed_steps"]) == (2, 0)
    assert [s["step"] for s in status["steps"]] == ["a", "b"]
    assert status["input"] == {"n": 1}


def test_status_text_summarises_a_failed_run(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc", {})
    fail_step_a(client, run_id)
    result = cli("status", "--text", str(run_id))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"run {run_id} of cli_lc: failed"
    assert lines[1] == "progress: 0/2 steps (0%)"
    assert "error (step a): step a failed: ValueError: bad row" in lines
    header = next(line for line in lines if line.startswith("step "))
    assert header.split() == [
        "step",
        "type",
        "status",
        "tasks",
        "attempts",
        "started_at",
        "ended_at",
        "error",
    ]
    row_a = lines[lines.index(header) + 1].split()
    assert row_a[:5] == ["a", "single", "failed", "0/1", "1"]


def test_status_of_an_unknown_run_is_one_error_line(cli: Any) -> None:
    ghost = "00000000-0000-4000-8000-000000000000"
    result = cli("status", ghost)
    assert result.exit_code == 1
    assert result.stderr == f"error: run {ghost} does not exist (SQLSTATE WF011)\n"


def test_runs_prints_a_table_filtered_and_paged(client: Client, cli: Any) -> None:
    first = client.start_flow("cli_lc_other", {})
    second = client.start_flow("cli_lc_other", {})
    client.cancel_workflow_run(second, "a reason that is long enough to be cut in the table " * 3)

    result = cli("runs", "--flow", "cli_lc_other")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "run_id",
        "flow",
        "state",
        "steps_left",
        "started_at",
        "ended_at",
        "error",
    ]
    assert [r.split()[0] for r in rows] == [str(second), str(first)]  # newest first
    assert rows[0].split()[1:4] == ["cli_lc_other", "cancelled", "1"]
    assert rows[0].endswith("...")  # a long error is cut
    assert rows[1].split()[2] == "running"
    # Columns line up: every row starts its state where the header's state column starts.
    assert {r.index(r.split()[2]) for r in rows} == {header.index("state")}

    asc = cli("runs", "--flow", "cli_lc_other", "--asc", "--order-by", "started_at")
    assert [r.split()[0] for r in asc.stdout.splitlines()[1:]] == [str(first), str(second)]
    page = cli("runs", "--flow", "cli_lc_other", "--limit", "1", "--offset", "1")
    assert [r.split()[0] for r in page.stdout.splitlines()[1:]] == [str(first)]
    cancelled = cli("runs", "--flow", "cli_lc_other", "--status", "cancelled")
    assert [r.split()[0] for r in cancelled.stdout.splitlines()[1:]] == [str(second)]
    assert cli("runs", "--flow", "cli_lc_other", "--status", "completed").stdout == "no runs\n"


def test_runs_json_lists_every_field(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc", {})
    result = cli("runs", "--json", "--flow", "cli_lc", "--limit", "1")
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.stdout)
    assert run["run_id"] == str(run_id)
    assert (run["flow_slug"], run["status"], run["state"], run["remaining_steps"]) == (
        "cli_lc",
        "started",
        "running",
        2,
    )
    assert set(run) == {
        "run_id",
        "flow_slug",
        "status",
        "state",
        "remaining_steps",
        "error_message",
        "retry_of",
        "started_at",
        "completed_at",
        "failed_at",
        "paused_at",
        "cancelled_at",
    }


@pytest.mark.parametrize(
    "args",
    [
        ("--order-by", "started_at; drop table workflow.runs"),
        ("--order-by", "run_id"),
        ("--status", "sleeping"),
        ("--limit", "0"),
        ("--offset", "-1"),
    ],
)
def test_runs_rejects_bad_options_with_wf010(
    client: Client, cli: Any, args: tuple[str, ...]
) -> None:
    result = cli("runs", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "(SQLSTATE WF010)" in result.stderr
    assert cli("runs", "--limit", "1").exit_code == 0  # and the table is still there


def test_pause_resume_and_cancel_a_run(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc", {})

    paused = cli("pause", str(run_id))
    assert (paused.exit_code, paused.stdout) == (0, f"run {run_id} paused\n")
    assert cli("pause", str(run_id)).exit_code == 0  # idempotent
    assert client.get_run_status(run_id).state == "paused"
    assert client.claim_tasks("cli_lc", 100, for_run_id=run_id) == []

    resumed = cli("resume", str(run_id))
    assert (resumed.exit_code, resumed.stdout) == (0, f"run {run_id} resumed\n")
    assert client.get_run_status(run_id).state == "running"

    cancelled = cli("cancel", str(run_id), "--reason", "wrong input")
    assert (cancelled.exit_code, cancelled.stdout) == (0, f"run {run_id} cancelled: wrong input\n")
    status = client.get_run_status(run_id)
    assert (status.state, status.error) == ("cancelled", "wrong input")
    assert client.claim_tasks("cli_lc", 100, for_run_id=run_id) == []

    refused = cli("resume", str(run_id))
    assert refused.exit_code == 1
    assert "(SQLSTATE WF013)" in refused.stderr


def test_cancel_a_completed_run_needs_force(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc_other", {})
    [task] = client.claim_tasks("cli_lc_other", 100, for_run_id=run_id)
    client.complete_tasks([(task.task_id, task.attempt, {"ok": True})])

    refused = cli("cancel", str(run_id))
    assert refused.exit_code == 1
    assert "(SQLSTATE WF013)" in refused.stderr
    assert "hint: " in refused.stderr
    assert client.get_run_status(run_id).state == "completed"

    forced = cli("cancel", str(run_id), "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.stdout == f"run {run_id} cancelled: User requested cancellation\n"
    assert client.get_run_status(run_id).state == "cancelled"


def test_retry_prints_the_new_run_id(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc", {"attempt": "first"})
    fail_step_a(client, run_id)

    result = cli("retry", str(run_id))
    assert result.exit_code == 0, result.output
    new_run = UUID(result.stdout.strip())
    status = client.get_run_status(new_run)
    assert (status.retry_of, status.input, status.state) == (
        run_id,
        {"attempt": "first"},
        "running",
    )
    listed = json.loads(cli("runs", "--json", "--flow", "cli_lc", "--limit", "1").stdout)
    assert listed[0]["retry_of"] == str(run_id)

    reset = cli("retry", "--reset-all", str(run_id))
    assert reset.exit_code == 0, reset.output
    assert client.get_run_status(UUID(reset.stdout.strip())).step("a").status == "started"

    not_failed = cli("retry", str(new_run))
    assert not_failed.exit_code == 1
    assert "(SQLSTATE WF013)" in not_failed.stderr


def test_control_commands_take_only_run_ids(cli: Any) -> None:
    for command in ("status", "cancel", "pause", "resume", "retry"):
        result = cli(command, "not-a-uuid")
        assert result.exit_code == 2, command
        assert "not a valid UUID" in result.stderr


def test_the_lifecycle_commands_are_listed(cli: Any) -> None:
    listed = cli("--help").stdout
    for command in ("status", "runs", "cancel", "pause", "resume", "retry"):
        assert f"\n  {command} " in listed


def test_a_second_cancel_prints_the_reason_that_is_stored(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc", {})
    first = cli("cancel", str(run_id), "--reason", "first")
    assert first.stdout == f"run {run_id} cancelled: first\n"
    again = cli("cancel", str(run_id), "--reason", "second")
    assert again.exit_code == 0, again.output
    # The first reason is kept (cancelling a cancelled run changes nothing): say so.
    assert again.stdout == f"run {run_id} cancelled: first\n"
    assert client.get_run_status(run_id).error == "first"


def test_cancel_of_an_ended_run_hints_at_the_option_not_sql(client: Client, cli: Any) -> None:
    run_id = client.start_flow("cli_lc_other", {})
    [task] = client.claim_tasks("cli_lc_other", 100, for_run_id=run_id)
    client.complete_tasks([(task.task_id, task.attempt, {})])
    refused = cli("cancel", str(run_id))
    assert refused.exit_code == 1
    assert "hint: Pass --force to mark it cancelled anyway." in refused.stderr
    assert "=>" not in refused.stderr


def test_status_says_which_steps_wait_for_a_worker(client: Client, cli: Any, db_url: str) -> None:
    run_id = client.start_flow("cli_lc", {})
    # No registered worker serves the queue: step a waits for one.
    data = json.loads(cli("status", str(run_id)).stdout)
    assert [s["waiting_for_worker"] for s in data["steps"]] == [True, False]
    assert client.get_run_status(run_id).waiting_for_worker == ["a"]
    text = cli("status", "--text", str(run_id)).stdout
    assert "waiting:  for a worker that can run a " in text
    with Client(db_url) as other:
        other.call(Operation(
            "select workflow.register_worker(worker_id => 'w-cli', queues => array['cli_lc'])",
            [], no_result))
        try:
            assert client.get_run_status(run_id).waiting_for_worker == []
            assert "waiting:" not in cli("status", "--text", str(run_id)).stdout
        finally:
            other.call(Operation("select workflow.deregister_worker('w-cli')", [], no_result))
    client.cancel_workflow_run(run_id)
