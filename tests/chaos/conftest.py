"""Fixtures for the long chaos suite: the same databases as tests/python (cloned templates).

tests/python/conftest.py is loaded under another module name, so that running both folders in
one pytest session does not make two modules called ``conftest`` collide.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "python" / "conftest.py"
_SPEC = importlib.util.spec_from_file_location("sw_python_conftest", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
_MODULE = importlib.util.module_from_spec(_SPEC)
sys.modules["sw_python_conftest"] = _MODULE
_SPEC.loader.exec_module(_MODULE)
sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest_configure = _MODULE.pytest_configure
template_database = _MODULE.template_database
db_url = _MODULE.db_url
