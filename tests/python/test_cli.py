"""The command line: migrate, sql, flows, the database option, and how errors are shown.

Most tests use click's CliRunner (in process, stdout and stderr apart); one runs the real
``python -m singularity_workflow`` in a subprocess, as a user or a script would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import click
import pytest
from click.testing import CliRunner

from singularity_workflow import Client
from singularity_workflow._db import Operation, no_result
from singularity_workflow.cli import main

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=1"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a CliRunner with no DATABASE_URL inherited from the environment."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return CliRunner()


@pytest.fixture(scope="module")
def registered(db_url: str) -> str:
    """Register one flow in the module's database; return its slug."""
    slug = "tests.cli.Orders"
    with Client(db_url) as client:
        client.register_flow(
            {
                "slug": slug,
                "timeout": 900,
                "steps": [
                    {"slug": "fetch", "execution": "distributed"},
                    {"slug": "charge", "execution": "distributed", "depends_on": ["fetch"],
                     "queue": "payments"},
                    {"slug": "each", "execution": "distributed", "depends_on": ["fetch"],
                     "type": "map", "resources": ["gpu"]},
                ],
            }
        )
    return slug


def test_migrate_dry_run_reports_nothing_pending_on_a_migrated_database(
    runner: CliRunner, db_url: str
) -> None:
    for args in (
        ["migrate", "--database-url", db_url, "--dry-run"],
        ["--database-url", db_url, "migrate", "--dry-run"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert result.stdout == "pending migrations: none\n"


def test_migrate_takes_database_url_from_the_environment(runner: CliRunner, db_url: str) -> None:
    result = runner.invoke(main, ["migrate"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    assert result.stdout == "applied migrations: none (up to date)\nfunctions reloaded\n"


def test_sql_prints_the_install_script_without_a_database(runner: CliRunner) -> None:
    result = runner.invoke(main, ["sql"])
    assert result.exit_code == 0
    assert "create or replace function workflow.start_flow(" in result.stdout
    assert "pgmq" in result.stdout
    without = runner.invoke(main, ["sql", "--no-pgmq"])
    assert without.exit_code == 0
    assert len(without.stdout) < len(result.stdout)


def test_flows_lists_registered_flows_as_a_table_and_as_json(
    runner: CliRunner, db_url: str, registered: str
) -> None:
    table = runner.invoke(main, ["--database-url", db_url, "flows"])
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["slug", "steps", "timeout", "created_at"]
    (row,) = [r for r in rows if r.startswith(registered + " ")]
    assert row.split()[1:3] == ["3", "900"]

    as_json = runner.invoke(main, ["--database-url", db_url, "flows", "--json"])
    assert as_json.exit_code == 0
    listed = {f["slug"]: f for f in json.loads(as_json.stdout)}
    assert listed[registered]["steps"] == 3
    assert listed[registered]["timeout"] == 900


def test_flows_with_a_slug_shows_its_steps(runner: CliRunner, db_url: str, registered: str) -> None:
    result = runner.invoke(main, ["--database-url", db_url, "flows", registered])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"flow {registered} (timeout: 900)"
    steps = {line.split()[0]: line.split() for line in lines[2:]}
    assert steps["charge"][1:5] == ["fetch", "single", "distributed", "payments"]
    assert steps["each"][2] == "map(fetch)" and "gpu" in steps["each"]
    as_json = runner.invoke(main, ["--database-url", db_url, "flows", registered, "--json"])
    assert json.loads(as_json.stdout) == Client(db_url).get_flow(registered)


def test_flows_versions_lists_a_flows_versions_and_version_shows_one(
    runner: CliRunner, db_url: str
) -> None:
    slug = "cli.versions"
    with Client(db_url) as c:
        a = {"slug": "a", "execution": "distributed"}
        c.register_flow({"slug": slug, "steps": [a]})
        c.start_flow(slug, {})
        c.register_flow({"slug": slug, "steps": [a, {"slug": "b", "execution": "distributed"}]})
    result = runner.invoke(main, ["--database-url", db_url, "flows", slug, "--versions"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["version", "shape_hash", "current"]
    assert [r.split()[0] for r in rows] == ["2", "1"]
    assert rows[0].split()[2] == "yes" and rows[1].split()[-2:] == ["1", "1"]
    as_json = runner.invoke(main, ["--database-url", db_url, "flows", slug, "--versions", "--json"])
    assert [v["version"] for v in json.loads(as_json.stdout)] == [2, 1]
    one = runner.invoke(main, ["--database-url", db_url, "flows", slug, "--version", "1", "--json"])
    assert [s["slug"] for s in json.loads(one.stdout)["steps"]] == ["a"]
    missing = runner.invoke(main, ["--database-url", db_url, "flows", slug, "--version", "9"])
    assert missing.exit_code == 1 and "WF020" in missing.output


def test_a_wf_error_is_one_line_with_its_sqlstate_and_exit_status_1(
    runner: CliRunner, db_url: str
) -> None:
    result = runner.invoke(main, ["--database-url", db_url, "flows", "tests.cli.ghost"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: flow tests.cli.ghost does not exist (SQLSTATE WF002)\n"


def test_an_unreachable_database_is_one_error_line_and_a_hint(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--database-url", UNREACHABLE, "flows"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    first, *rest = result.stderr.splitlines()
    assert first.startswith("error: cannot connect to the database: ")
    assert "port 1 failed" in first
    assert all(line.startswith("hint: ") for line in rest) and len(rest) <= 1


def test_no_database_at_all_says_how_to_give_one(runner: CliRunner) -> None:
    result = runner.invoke(main, ["flows"])
    assert result.exit_code == 1
    first, hint = result.stderr.splitlines()
    assert first.startswith("error: no database given") and "DATABASE_URL" in first
    assert hint.startswith("hint: ")


def test_usage_errors_keep_clicks_usage_message(runner: CliRunner) -> None:
    result = runner.invoke(main, ["flows", "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.stderr


@pytest.mark.slow
def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "singularity_workflow", "sql", "--no-pgmq"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("--")
    assert "create or replace function workflow.claim_tasks(" in done.stdout
    version = subprocess.run(
        [sys.executable, "-m", "singularity_workflow", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0
    assert version.stdout.startswith("singularity-workflow, version ")


def test_the_worker_commands_are_registered_and_show_errors_the_same_way(
    runner: CliRunner, db_url: str
) -> None:
    listed = runner.invoke(main, ["--help"])
    for command in ("worker", "run", "status", "flows", "migrate", "sql"):
        assert f"\n  {command} " in listed.stdout
    ghost = "00000000-0000-4000-8000-000000000000"
    result = runner.invoke(main, ["--database-url", db_url, "status", ghost])
    assert result.exit_code == 1
    assert result.stderr == f"error: run {ghost} does not exist (SQLSTATE WF011)\n"


def test_every_command_takes_the_database_url_before_or_after_its_name(
    runner: CliRunner, db_url: str, registered: str
) -> None:
    # Given only after the command's name (no DATABASE_URL, nothing before it), for a command
    # of each module: it used to be refused as "no such option" except on migrate.
    for args in (
        ["flows", "--database-url", db_url, registered, "--json"],
        ["runs", "--database-url", db_url, "--json"],
        ["goal", "show", "--database-url", db_url, str(uuid.uuid4())],
    ):
        result = runner.invoke(main, args)
        assert "No such option" not in result.output, (args, result.output)
        assert "no database given" not in result.output, (args, result.output)
    result = runner.invoke(main, ["flows", "--database-url", db_url, registered, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["slug"] == registered


def test_a_url_after_the_command_wins_over_the_group_and_the_environment(
    runner: CliRunner, db_url: str, registered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    args = ["--database-url", UNREACHABLE, "flows", "--database-url", db_url, registered]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    # And a URL before the name is not replaced by DATABASE_URL when the command has none.
    result = runner.invoke(main, ["--database-url", db_url, "flows", registered])
    assert result.exit_code == 0, result.output


def test_status_takes_the_database_url_after_the_command(
    runner: CliRunner, db_url: str, registered: str
) -> None:
    with Client(db_url) as client:
        run_id = client.start_flow(registered, {})
    result = runner.invoke(main, ["status", "--database-url", db_url, str(run_id)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"] == str(run_id)


#: RST markup that click would print as is: ``literals``, :class:`roles`, directives.
RST = re.compile(r"``|:(?:class|func|meth|data|attr|mod|exc|ref):`|^\s*\.\. \w+::", re.MULTILINE)


def _command_paths(command: click.Command, path: list[str]) -> list[list[str]]:
    """Every command of the tree under ``command``, as the words that name it."""
    found = [path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _command_paths(sub, [*path, name])
    return found


def test_no_help_text_shows_raw_rst(runner: CliRunner) -> None:
    paths = _command_paths(main, [])
    assert ["workers"] in paths and len(paths) > 15
    for path in paths:
        shown = runner.invoke(main, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        assert not RST.search(shown.stdout), (path, RST.findall(shown.stdout))


def test_workers_lists_the_live_workers_and_with_all_the_dead_ones(
    runner: CliRunner, db_url: str
) -> None:
    with Client(db_url) as client:
        for worker_id, handlers in (("w-live", '{"f": ["a", "b"]}'), ("w-gone", None)):
            client.call(Operation(
                "select workflow.register_worker(worker_id => %s, host => 'box', pid => 42,"
                " queues => array['q1', 'q2'], resources => array['gpu'], handlers => %s,"
                " version => '9.9')", [worker_id, handlers], no_result))
        client.call(Operation("select workflow.deregister_worker('w-gone')", [], no_result))
        try:
            live = runner.invoke(main, ["workers", "--database-url", db_url])
            assert live.exit_code == 0, live.output
            header, *rows = live.stdout.splitlines()
            assert header.split() == ["worker", "host", "pid", "queues", "resources", "handlers",
                                      "version", "last_heartbeat", "alive"]
            assert [r.split()[:7] for r in rows] == [
                ["w-live", "box", "42", "q1,q2", "gpu", "2", "9.9"]
            ]
            assert rows[0].split()[-1] == "yes"
            every = runner.invoke(main, ["workers", "--all", "--json", "--database-url", db_url])
            shown = {w["worker_id"]: w["alive"] for w in json.loads(every.stdout)}
            assert shown == {"w-gone": False, "w-live": True}
        finally:
            client.call(Operation("select workflow.deregister_worker('w-live')", [], no_result))
    assert runner.invoke(main, ["workers", "--database-url", db_url]).stdout == "no live workers\n"


def test_run_wait_shows_steps_done_and_the_running_steps(
    runner: CliRunner, db_url: str, registered: str
) -> None:
    # Nothing serves the flow: the wait times out, and its progress says what runs and waits.
    result = runner.invoke(
        main, ["run", registered, "--wait", "--timeout", "1", "--database-url", db_url]
    )
    assert result.exit_code == 1
    assert "progress: 0/3 steps done; running: fetch; waiting for a worker: fetch" in (
        result.stderr
    )
