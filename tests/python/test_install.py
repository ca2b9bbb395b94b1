"""Tests of the installer: fresh install, re-run, upgrade, the psql script, concurrency, the wheel.

Most tests run against the repository's real ``sql/`` directory, since that is what users get.
Behaviours that need a controlled set of migrations (an upgrade, a failing migration, a slow
one to force two installers to overlap) use a small SQL directory written into ``tmp_path``.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from singularity_workflow._install import (
    InstallError,
    function_files,
    install,
    migrations,
    pending_migrations,
    render_install_sql,
    sql_dir,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTION_NAME = re.compile(
    r"create\s+(?:or\s+replace\s+)?function\s+([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\s*\(",
    re.IGNORECASE,
)

requires_real_migrations = pytest.mark.skipif(
    not migrations(), reason="sql/migrations has no migration yet"
)


def write_sql_dir(root: Path, migration_files: dict[str, str], functions: dict[str, str]) -> Path:
    """Write a minimal SQL directory (migrations/ and functions/) and return its path."""
    (root / "migrations").mkdir(parents=True, exist_ok=True)
    (root / "functions").mkdir(parents=True, exist_ok=True)
    for name, body in migration_files.items():
        (root / "migrations" / name).write_text(body)
    for name, body in functions.items():
        (root / "functions" / name).write_text(body)
    return root


SAMPLE_FUNCTIONS = {
    # Calls between files in every direction of name order, in both languages: a SQL function
    # calling one that sorts after it, a helper calling a public function.
    "answer.sql": "create or replace function workflow.answer() returns int\n"
    "language sql set search_path = '' as $$ select workflow.zz_double(21) $$;\n",
    "zz_double.sql": "create or replace function workflow.zz_double(x int) returns int\n"
    "language plpgsql set search_path = '' as $$ begin return x * 2; end $$;\n",
    "_half_answer.sql": "create or replace function workflow._half_answer() returns int\n"
    "language sql set search_path = '' as $$ select workflow.answer() / 2 $$;\n",
}


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """Write a SQL directory with one migration and two functions (one calls the other)."""
    return write_sql_dir(
        tmp_path / "sql",
        {"0001_first.sql": "create table workflow.things (id int primary key);\n"},
        SAMPLE_FUNCTIONS,
    )


def recorded(url: str) -> list[tuple[int, str, object]]:
    """Return the rows of workflow.schema_migrations (version, name, applied_at) in order."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select version, name, applied_at from workflow.schema_migrations order by version"
        ).fetchall()


def functions_in_database(url: str) -> set[str]:
    """Return ``schema.name`` of every function in schema workflow."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select n.nspname || '.' || p.proname from pg_catalog.pg_proc as p"
            " join pg_catalog.pg_namespace as n on n.oid = p.pronamespace"
            " where n.nspname = 'workflow'"
        ).fetchall()
    return {name for (name,) in rows}


def functions_in_files(directory: Path) -> set[str]:
    """Return ``schema.name`` of every function the function files create."""
    names = set()
    for path in function_files(directory):
        names.update(f"{s}.{n}".lower() for s, n in FUNCTION_NAME.findall(path.read_text()))
    return names


@requires_real_migrations
def test_fresh_install_applies_every_migration_in_order(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    expected = [m.name for m in migrations()]
    assert install(url) == expected
    assert [(v, n) for v, n, _ in recorded(url)] == [(m.version, m.name) for m in migrations()]


@requires_real_migrations
def test_second_install_applies_nothing_and_keeps_the_records(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    install(url)
    before = recorded(url)
    assert install(url) == []
    assert recorded(url) == before


def test_upgrade_applies_only_the_new_migration(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    url = fresh_database()
    assert install(url, sql_dir=sample_dir) == ["0001_first"]
    first = recorded(url)
    (sample_dir / "migrations" / "0002_second.sql").write_text(
        "alter table workflow.things add column label text;\n"
    )
    with psycopg.connect(url) as conn:
        assert pending_migrations(conn, sql_dir=sample_dir) == ["0002_second"]
    assert install(url, sql_dir=sample_dir) == ["0002_second"]
    assert recorded(url)[0] == first[0]
    with psycopg.connect(url) as conn:
        conn.execute("insert into workflow.things (id, label) values (1, 'x')")


def test_dry_run_lists_pending_migrations_and_changes_nothing(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    url = fresh_database()
    assert install(url, dry_run=True, sql_dir=sample_dir) == ["0001_first"]
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regnamespace('workflow')").fetchone() == (None,)


def test_install_accepts_an_open_connection_and_restores_its_mode(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    with psycopg.connect(fresh_database()) as conn:
        assert install(conn, sql_dir=sample_dir) == ["0001_first"]
        assert conn.autocommit is False
        assert conn.execute("select count(*) from workflow.things").fetchone() == (0,)
        with pytest.raises(InstallError, match="inside a transaction"):
            install(conn, sql_dir=sample_dir)


def test_failing_migration_names_itself_and_records_nothing(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    url = fresh_database()
    install(url, sql_dir=sample_dir)
    (sample_dir / "migrations" / "0002_broken.sql").write_text(
        "alter table workflow.things add column ok int;\n"
        "alter table workflow.no_such_table add column x int;\n"
    )
    with pytest.raises(psycopg.errors.UndefinedTable, match="migration 0002_broken: "):
        install(url, sql_dir=sample_dir)
    assert [n for _, n, _ in recorded(url)] == ["0001_first"]
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "select count(*) from information_schema.columns"
            " where table_schema = 'workflow' and table_name = 'things' and column_name = 'ok'"
        ).fetchone() == (0,)


def test_install_refuses_a_database_newer_than_the_package(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    url = fresh_database()
    install(url, sql_dir=sample_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into workflow.schema_migrations (version, name) values (9, '0009_x')")
    with pytest.raises(InstallError, match="newer version"):
        install(url, sql_dir=sample_dir)


def test_migration_with_its_own_transaction_control_is_refused(sample_dir: Path) -> None:
    (sample_dir / "migrations" / "0002_tx.sql").write_text("begin;\nselect 1;\ncommit;\n")
    with pytest.raises(InstallError, match="begin/commit"):
        render_install_sql(sql_dir=sample_dir)


def test_migration_containing_the_wrapper_delimiter_is_refused(sample_dir: Path) -> None:
    (sample_dir / "migrations" / "0002_tag.sql").write_text(
        "select $sw_migration_0002$ oops $sw_migration_0002$;\n"
    )
    with pytest.raises(InstallError, match="dollar-quote delimiter"):
        render_install_sql(sql_dir=sample_dir)


def run_psql_file(url: str, script: Path) -> subprocess.CompletedProcess[str]:
    """Run ``psql -v ON_ERROR_STOP=1 -f script`` on ``url``; fail the test if psql fails."""
    done = subprocess.run(
        ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@requires_real_migrations
def test_rendered_script_runs_with_psql_and_a_second_run_changes_no_migration(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    url = fresh_database()
    script = tmp_path / "install.sql"
    script.write_text(render_install_sql())
    run_psql_file(url, script)
    first = recorded(url)
    assert [n for _, n, _ in first] == [m.name for m in migrations()]
    run_psql_file(url, script)
    assert recorded(url) == first
    with psycopg.connect(url) as conn:
        assert pending_migrations(conn) == []


@pytest.mark.parametrize("which", ["repository", "sample"])
def test_every_function_file_is_loaded_into_the_database(
    which: str, fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    directory = sql_dir() if which == "repository" else sample_dir
    expected = functions_in_files(directory)
    if not expected:
        pytest.skip("sql/functions has no function yet")
    url = fresh_database()
    install(url, sql_dir=directory)
    assert expected <= functions_in_database(url)


def test_functions_may_call_functions_whatever_their_file_names(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    url = fresh_database()
    install(url, sql_dir=sample_dir)
    with psycopg.connect(url) as conn:
        assert conn.execute("select workflow.answer(), workflow._half_answer()").fetchone() == (
            42,
            21,
        )


def test_sql_function_calling_a_missing_function_fails_the_install(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    # Pass 1 loads SQL functions unchecked; pass 3 must still catch a real error.
    (sample_dir / "functions" / "broken.sql").write_text(
        "create or replace function workflow.broken() returns int\n"
        "language sql set search_path = '' as $$ select workflow.no_such_function() $$;\n"
    )
    url = fresh_database()
    with pytest.raises(psycopg.errors.UndefinedFunction):
        install(url, sql_dir=sample_dir)
    assert functions_in_database(url) == set()


def test_plpgsql_syntax_error_fails_the_install(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    (sample_dir / "functions" / "broken.sql").write_text(
        "create or replace function workflow.broken() returns int\n"
        "language plpgsql set search_path = '' as $$ begin retur 1; end $$;\n"
    )
    url = fresh_database()
    with pytest.raises(psycopg.errors.SyntaxError):
        install(url, sql_dir=sample_dir)


def _install_in_child(url: str, directory: str, barrier: object) -> list[str]:
    """Child-process body: wait for the sibling, then install (spawned, so top-level)."""
    barrier.wait()  # type: ignore[attr-defined]
    return install(url, sql_dir=Path(directory))


@pytest.mark.slow
def test_two_concurrent_installs_both_succeed_and_apply_each_migration_once(
    fresh_database: Callable[[], str], sample_dir: Path
) -> None:
    # A slow migration makes the two installers overlap for certain, including on pgmq.
    (sample_dir / "migrations" / "0002_slow.sql").write_text("select pg_sleep(0.5);\n")
    url = fresh_database()
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(2)
        with context.Pool(2) as pool:
            results = pool.starmap(
                _install_in_child,
                [(url, str(sample_dir), barrier), (url, str(sample_dir), barrier)],
            )
    assert sorted(results[0] + results[1]) == ["0001_first", "0002_slow"]
    assert [] in results  # the second installer found nothing left to do
    assert [n for _, n, _ in recorded(url)] == ["0001_first", "0002_slow"]


@pytest.mark.slow
def test_two_concurrent_psql_runs_of_the_script_both_succeed(
    fresh_database: Callable[[], str], sample_dir: Path, tmp_path: Path
) -> None:
    # psql users get no session lock; the per-transaction advisory lock must be enough.
    (sample_dir / "migrations" / "0002_slow.sql").write_text("select pg_sleep(0.5);\n")
    url = fresh_database()
    script = tmp_path / "install.sql"
    script.write_text(render_install_sql(sql_dir=sample_dir))
    command = ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr
    assert [n for _, n, _ in recorded(url)] == ["0001_first", "0002_slow"]


def test_cli_sql_prints_the_install_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "singularity_workflow.cli", "sql"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == render_install_sql()


def test_editable_install_reads_the_repository_sql_directory() -> None:
    assert sql_dir() == REPO_ROOT / "sql"


@pytest.mark.slow
def test_sdist_and_wheel_carry_every_sql_file(tmp_path: Path) -> None:
    # `python -m build` builds the sdist, then the wheel from the unpacked sdist: both paths
    # (checkout -> sdist, sdist -> wheel) must carry the SQL.
    project = tmp_path / "checkout"
    shutil.copytree(
        REPO_ROOT / "python",
        project / "python",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "dist", "build"),
    )
    shutil.copytree(REPO_ROOT / "sql", project / "sql")
    out = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(out),
            str(project / "python"),
        ],
        check=True,
        capture_output=True,
    )
    expected = {
        "singularity_workflow/sql/" + p.relative_to(REPO_ROOT / "sql").as_posix()
        for p in (REPO_ROOT / "sql").rglob("*.sql")
    }
    assert expected, "no SQL files to look for"
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert expected <= set(archive.namelist())
        archive.extractall(tmp_path / "unpacked")
    # Installed from the wheel (here: imported from the unpacked files), the loader finds the
    # packaged SQL, not a repository.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from singularity_workflow._install import sql_dir; print(sql_dir())",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "unpacked"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == tmp_path / "unpacked" / "singularity_workflow" / "sql"
