"""The test suite: pgTAP in tests/sql, pytest in tests/python and tests/chaos."""
