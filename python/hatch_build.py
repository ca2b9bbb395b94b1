"""Hatch build hook: put the repository's ``sql/`` directory into the wheel.

The SQL files are the product's core and live at the repository root, next to ``python/``, so
that psql users and reviewers find them without digging into a Python package. The installer
reads them as package data (``singularity_workflow/sql/``). Built from a checkout, the wheel takes
them from ``../sql``; built from our sdist, they are already inside the package directory (the
sdist force-includes them there), so this hook adds nothing and hatch packs them as ordinary
package files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Force-include ``../sql`` as ``singularity_workflow/sql`` when building from a checkout."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Add the repository SQL directory to the wheel if this is a checkout build."""
        repo_sql = Path(self.root).parent / "sql"
        in_package = Path(self.root) / "singularity_workflow" / "sql"
        if repo_sql.is_dir() and not in_package.exists():
            build_data["force_include"][str(repo_sql)] = "singularity_workflow/sql"
        elif not in_package.is_dir():
            raise RuntimeError(f"no SQL to package: neither {repo_sql} nor {in_package} exists")
