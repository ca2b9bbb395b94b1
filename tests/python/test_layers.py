"""The package's layering contract (scripts/check_layers.py): the package keeps it, and it bites.

``make lint`` runs the same check; these tests show that it finds each kind of violation in a
small package written for the purpose, so a checker that silently passes everything would fail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check_layers.py"


def check(package: Path) -> list[str]:
    """Run the checker on ``package``; return its violation messages (one per line)."""
    done = subprocess.run(
        [sys.executable, str(CHECKER), str(package)], capture_output=True, text=True, timeout=60
    )
    lines = [line.split(": ", 1)[1] for line in done.stderr.splitlines() if ": " in line]
    assert done.returncode == (1 if lines else 0), done.stderr
    return lines


def write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write a fake singularity_workflow package with ``files`` (path -> source)."""
    package = tmp_path / "singularity_workflow"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_the_package_keeps_its_layers() -> None:
    assert check(ROOT / "python" / "singularity_workflow") == []


def test_a_lower_layer_importing_a_higher_one_is_refused(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "_types.py": "from singularity_workflow._client import Client\n",
        "_client.py": "",
        "_db.py": "def f():\n    from singularity_workflow import _operations\n",
        "_operations/__init__.py": "",
    })
    messages = check(package)
    assert any("_types (layer values) imports _client" in m for m in messages), messages
    # A lazy import inside a function is a dependency too.
    assert any("_db (layer db) imports _operations" in m for m in messages), messages


def test_a_private_name_of_another_module_and_the_cli_are_refused(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "_errors.py": "_SECRET = 1\n",
        "_client.py": "from singularity_workflow._errors import _SECRET\n",
        "cli/__init__.py": "",
        "dashboard/__init__.py": "import singularity_workflow.cli\n",
        "_listen.py": "from singularity_workflow import Client\n",
    })
    messages = check(package)
    assert "_client imports the private name _SECRET of _errors" in messages
    assert "dashboard imports the CLI (cli)" in messages
    assert any("_listen imports 'Client' from the package root" in m for m in messages)


def test_a_module_without_a_layer_fails_until_it_is_placed(tmp_path: Path) -> None:
    package = write_package(tmp_path, {"_newcomer.py": "", "worker/_claims.py": ""})
    messages = check(package)
    assert messages == ["module '_newcomer' has no layer: add it to LAYERS here"]


def test_an_import_cycle_is_refused_even_within_one_layer(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "_listen.py": "from singularity_workflow.worker._engine import Engine\n",
        "worker/_engine.py": "def f():\n    from singularity_workflow._listen import Listener\n",
    })
    assert check(package) == ["import cycle: _listen -> worker._engine -> _listen"]
