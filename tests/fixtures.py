"""Shared pytest fixtures and hooks of tests/python and tests/chaos (their conftests import them).

Databases: real PostgreSQL databases, cloned from a migrated template.

Installing the schema (pgmq's ~2,000 lines plus ours) costs about a second; cloning a database
from a template is a file copy and costs far less. So the session installs once into a template
database, and each test module gets its own clone: modules never see each other's rows, and a
module that needs a pristine database for every test can use ``fresh_database`` instead.

The server comes from ``SW_TEST_DATABASE_URL``, ``SW_TEST_ADMIN_URL`` or ``DATABASE_URL`` (an
admin connection that may create databases), else 127.0.0.1:5432; every database made here is
named ``sw_*_<random>`` and dropped afterwards. Making, cloning and dropping them is the code of
the users' pytest plugin, ``singularity_workflow.testing``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from singularity_workflow import testing

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
    """Return the admin connection string used to create and drop test databases.

    The suite always has a server (127.0.0.1:5432 by default); the plugin's container and
    embedded backends are for users' suites.
    """
    for name in testing.URL_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return DEFAULT_ADMIN_URL


# The databases are made by the same code as users' tests get from the pytest plugin
# (singularity_workflow.testing); these wrappers only bind the suite's server.


def database_url(name: str) -> str:
    """Return a connection string for database ``name`` on the admin connection's server."""
    return testing.database_url(admin_url(), name)


def create_database(prefix: str, template: str | None = None) -> str:
    """Create an empty (or, with ``template``, cloned) database ``<prefix>_<random>``."""
    return testing.create_database(admin_url(), prefix, template)


def drop_database(name: str) -> None:
    """Drop database ``name``, first ending any session a test or a worker left connected."""
    testing.drop_database(admin_url(), name)


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """Create a database with the schema installed and mark it as a template; yield its name."""
    try:
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.exit(f"cannot reach PostgreSQL at {admin_url()!r}: {exc}", returncode=2)
    name = testing.make_template(admin_url())
    try:
        yield name
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def db_url(template_database: str) -> Iterator[str]:
    """Give each test module its own database cloned from the migrated template."""
    with testing.clone_database(admin_url(), template_database) as url:
        yield url


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
