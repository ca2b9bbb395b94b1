"""CLI ``schedules``: each command end to end, and bad input as one ``error:`` line.

Create, list with next fires, show, disable, enable, trigger, delete; the errors carry their
SQLSTATE (WF002, WF027, WF028, WF029).
"""

from __future__ import annotations

import json
from uuid import UUID

import pytest
from click.testing import CliRunner

from singularity_workflow import Client
from singularity_workflow.cli import main


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a CliRunner with no DATABASE_URL inherited from the environment."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return CliRunner()


def test_schedules_commands_manage_a_schedule_end_to_end(
    runner: CliRunner, db_url: str
) -> None:
    with Client(db_url) as client:
        client.register_flow(
            {
                "slug": "cli_sched",
                "steps": [{"slug": "only", "execution": "distributed"}],
            }
        )

    def cli(*args: str) -> str:
        result = runner.invoke(main, ["--database-url", db_url, "schedules", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert cli() == "no schedules\n"
    created = cli(
        "create",
        "nightly",
        "cli_sched",
        "30 2 * * *",
        "--timezone",
        "Europe/Berlin",
        "--input",
        '{"k": 1}',
        "--missed",
        "once",
    )
    assert created.startswith("schedule nightly created; first fire ")
    listing = cli()
    assert "nightly" in listing and "Europe/Berlin" in listing and "yes" in listing
    shown = json.loads(cli("show", "nightly", "-n", "3"))
    assert shown["input"] == {"k": 1} and shown["missed"] == "once"
    assert len(shown["next_fire_times"]) == 3
    assert cli("disable", "nightly") == "schedule nightly disabled\n"
    assert json.loads(cli("--json"))[0]["enabled"] is False
    assert cli("enable", "nightly").startswith("schedule nightly enabled; next fire ")
    run_id = UUID(cli("trigger", "nightly").strip())
    with Client(db_url) as client:
        assert client.get_run_status(run_id).flow_slug == "cli_sched"
    assert cli("delete", "nightly") == "schedule nightly deleted\n"
    assert cli("delete", "nightly") == "schedule nightly did not exist\n"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["create", "bad", "cli_sched_none", "@daily"], "WF002"),
        (["create", "bad", "cli_sched2", "0 0 * 13 *"], "WF027"),
        (["create", "bad", "cli_sched2", "@daily", "--timezone", "Mars/Base"], "WF028"),
        (["show", "nope"], "WF029"),
        (["trigger", "nope"], "WF029"),
    ],
)
def test_schedules_bad_input_is_one_error_line(
    runner: CliRunner, db_url: str, args: list[str], code: str
) -> None:
    with Client(db_url) as client:
        client.register_flow(
            {
                "slug": "cli_sched2",
                "steps": [{"slug": "only", "execution": "distributed"}],
            }
        )
    result = runner.invoke(main, ["--database-url", db_url, "schedules", *args])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and f"(SQLSTATE {code})" in result.stderr
