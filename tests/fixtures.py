"""Shared pytest fixtures and hooks of tests/python and tests/chaos (their conftests import them).

Databases: real PostgreSQL databases, cloned from a migrated template.

Installing the schema (pgmq's ~2,000 lines plus ours) costs about a second; cloning a database
from a template is a file copy and costs far less. So the session installs once into a template
database, and each test module gets its own clone: modules never see each other's rows, and a
module that needs a pristine database for every test can use ``fresh_database`` instead.

The server comes from ``SW_TEST_ADMIN_URL`` or ``DATABASE_URL`` (an admin connection that may
create databases); every database made here is named ``sw_*_<random>`` and dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from singularity_workflow import install

DEFAULT_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"
DEFAULT_TIMEOUT_SECONDS = 120


def pytest_configure(config: pytest.Config) -> None:
    """Register our markers and give every test a default timeout.

    Done here rather than in an ini file so that any way of running pytest on this folder
    (``make test-python``, ``pytest tests/python`` from anywhere) gets the same settings. A hung
    lock or a lost notification then fails one test after 120 s instead of hanging the run.
    """
    config.addinivalue_line("markers", "slow: takes more than a few seconds (builds, processes)")
    config.addinivalue_line(
        "markers",
        "unit: needs no database server (set on every test that uses none of the database"
        " fixtures and is not slow); `pytest -m unit` runs them alone, in seconds",
    )
    config.addinivalue_line(
        "markers", "database: reaches the server without the database fixtures (never unit)"
    )
    if config.getoption("timeout", None) is None and not config.getini("timeout"):
        config.option.timeout = DEFAULT_TIMEOUT_SECONDS


#: Fixtures that need the server: a test whose fixture closure holds one is not a unit test.
DATABASE_FIXTURES = frozenset({"template_database", "fresh_database"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark as ``unit`` every test that needs no server: no database fixture, not slow.

    Derived from the fixtures rather than written on each test, so that a test that starts to
    use a database leaves the unit set by itself. A test that reaches the server some other way
    (a subprocess, a helper called directly) carries ``@pytest.mark.database``.
    """
    for item in items:
        if item.get_closest_marker("unit") is not None:
            continue
        names = set(getattr(item, "fixturenames", ()))
        if names & DATABASE_FIXTURES:
            continue
        if item.get_closest_marker("slow") or item.get_closest_marker("database"):
            continue
        item.add_marker(pytest.mark.unit)


def import_file(path: Path) -> ModuleType:
    """Import the module in file ``path`` under its own name (the file's stem) and return it.

    For modules a test writes at run time (flows that worker subprocesses import through
    PYTHONPATH): this process imports the same file under the same name, without putting its
    directory on ``sys.path``. A module of that name imported before is replaced.
    """
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def admin_url() -> str:
    """Return the admin connection string used to create and drop test databases."""
    return (
        os.environ.get("SW_TEST_ADMIN_URL") or os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL
    )


def database_url(name: str) -> str:
    """Return a connection string for database ``name`` on the admin connection's server."""
    return make_conninfo(admin_url(), dbname=name)


def create_database(prefix: str, template: str | None = None) -> str:
    """Create an empty (or, with ``template``, cloned) database ``<prefix>_<random>``."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    query = sql.SQL("create database {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} template {}").format(query, sql.Identifier(template))
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(query)
    return name


def drop_database(name: str) -> None:
    """Drop database ``name``, first ending any session a test or a worker left connected."""
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("alter database {} is_template false").format(sql.Identifier(name)))
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = %s and pid <> pg_backend_pid()",
            [name],
        )
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """Create a database with the schema installed and mark it as a template; yield its name."""
    try:
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.exit(f"cannot reach PostgreSQL at {admin_url()!r}: {exc}", returncode=2)
    name = create_database("sw_tpl")
    try:
        install(database_url(name))
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("alter database {} is_template true").format(sql.Identifier(name))
            )
        yield name
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def db_url(template_database: str) -> Iterator[str]:
    """Give each test module its own database cloned from the migrated template."""
    name = create_database("sw_test", template=template_database)
    try:
        yield database_url(name)
    finally:
        drop_database(name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Yield an autocommit connection to the module's database, closed after the test."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def fresh_database() -> Iterator[Callable[[], str]]:
    """Return a factory of empty databases (no schema at all), all dropped after the test.

    For tests of the installer itself, which must start from nothing.
    """
    made: list[str] = []

    def make() -> str:
        made.append(create_database("sw_fresh"))
        return database_url(made[-1])

    try:
        yield make
    finally:
        for name in made:
            drop_database(name)
