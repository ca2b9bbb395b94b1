"""Fixtures of the long chaos suite: the same databases as tests/python (``tests.fixtures``)."""

from tests.fixtures import (
    db_url,
    pytest_collection_modifyitems,
    pytest_configure,
    template_database,
)

__all__ = ["db_url", "pytest_collection_modifyitems", "pytest_configure", "template_database"]
