"""Fixtures of tests/python: the shared ones of ``tests.fixtures`` (databases, markers)."""

from tests.fixtures import (
    conn,
    db_url,
    fresh_database,
    pytest_collection_modifyitems,
    pytest_configure,
    template_database,
)

__all__ = [
    "conn",
    "db_url",
    "fresh_database",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "template_database",
]
