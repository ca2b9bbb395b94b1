"""The committed scripts for DBAs (sql/dist) are what the installer renders, and they work alone.

``sql/dist/install.sql`` and ``sql/dist/upgrade-<release>.sql`` are applied with
``psql -v ON_ERROR_STOP=1 -f`` and nothing else. The first test fails when a change under
``sql/`` was committed without ``make dist-sql``; the second proves that the upgrade script
turns a database of the previous release into the schema a new install gets.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
from click.testing import CliRunner

from singularity_workflow._install import releases, render_install_sql, render_upgrade_sql
from singularity_workflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "sql" / "dist"

# The schema as the catalog has it: tables and columns, constraints, indexes, functions with
# their whole definitions, table options, and which migrations are recorded.
CATALOG = """
select 'column', c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
    || case when a.attnotnull then ' not null' else '' end
    || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
from pg_attribute a
join pg_class c on c.oid = a.attrelid
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where c.relnamespace = 'workflow'::regnamespace and c.relkind in ('r', 'p', 'v')
  and a.attnum > 0 and not a.attisdropped
union all
select 'table options', c.relname || ' ' || coalesce(array_to_string(c.reloptions, ','), '')
from pg_class c where c.relnamespace = 'workflow'::regnamespace and c.relkind in ('r', 'p')
union all
select 'constraint', r.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
from pg_constraint k join pg_class r on r.oid = k.conrelid
where k.connamespace = 'workflow'::regnamespace
union all
select 'index', pg_get_indexdef(i.indexrelid)
from pg_index i join pg_class c on c.oid = i.indrelid
where c.relnamespace = 'workflow'::regnamespace
union all
select 'function', pg_get_functiondef(p.oid)
from pg_proc p where p.pronamespace = 'workflow'::regnamespace
union all
select 'function acl', p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '')
from pg_proc p where p.pronamespace = 'workflow'::regnamespace
union all
select 'migration', m.version || ' ' || m.name from workflow.schema_migrations m
order by 1, 2
"""


def psql_file(url: str, path: Path) -> None:
    """Apply one SQL file with psql and nothing else, stopping at the first error."""
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), url],
        check=True,
        capture_output=True,
        text=True,
    )


def catalog(url: str) -> list[tuple[str, str]]:
    """Return the schema's catalog rows (see CATALOG)."""
    with psycopg.connect(url) as conn:
        return [(kind, text) for kind, text in conn.execute(CATALOG).fetchall()]


def test_the_committed_scripts_are_what_the_installer_renders() -> None:
    stale = "is out of date: run make dist-sql"
    assert (DIST / "install.sql").read_text() == render_install_sql(), f"install.sql {stale}"
    for release in releases():
        path = DIST / f"upgrade-{release}.sql"
        assert path.read_text() == render_upgrade_sql(release), f"{path.name} {stale}"
    assert sorted(p.name for p in DIST.glob("*.sql")) == sorted(
        ["install.sql"] + [f"upgrade-{r}.sql" for r in releases()]
    )


def test_the_upgrade_script_gives_a_release_database_the_schema_of_a_new_install(
    fresh_database: Callable[[], str],
) -> None:
    [release] = releases()
    upgraded = fresh_database()
    psql_file(upgraded, ROOT / "sql" / "releases" / f"{release}.sql")
    before = catalog(upgraded)
    psql_file(upgraded, DIST / f"upgrade-{release}.sql")
    psql_file(upgraded, DIST / f"upgrade-{release}.sql")  # a second run changes nothing
    new = fresh_database()
    psql_file(new, DIST / "install.sql")
    assert before != catalog(new), "the release and the current schema differ (not vacuous)"
    assert catalog(upgraded) == catalog(new)


def test_the_upgrade_script_refuses_a_database_older_than_the_release(
    fresh_database: Callable[[], str],
) -> None:
    [release] = releases()
    empty = fresh_database()
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(DIST / f"upgrade-{release}.sql"),
         empty],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"upgrades a database at release {release}" in result.stderr


def test_the_cli_prints_the_upgrade_script_and_refuses_an_unknown_release() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["sql", "--upgrade-from", "0.1.0"])
    assert result.exit_code == 0
    assert result.output == (DIST / "upgrade-0.1.0.sql").read_text()
    result = runner.invoke(main, ["sql", "--upgrade-from", "0.0.1"])
    assert result.exit_code == 1
    assert "unknown release '0.0.1'" in result.output
