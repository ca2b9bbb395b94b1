"""pytest tests of the Python package; the shared fixtures are in ``tests.fixtures``."""
