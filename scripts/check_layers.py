#!/usr/bin/env python3
"""Check the Python package's layering: imports point down, and private names stay private.

The package is built in layers (docs/architecture.md, "Python layers"); a module may import
modules of its own layer or of a lower one, never of a higher one. Every module must be placed:
one that matches no entry of ``LAYERS`` fails the check, so a new module (a new ``worker/``
part, say) is covered the day it is added. Also refused:

* importing another module's private name (``from singularity_workflow.x import _name``;
  private *modules* such as ``singularity_workflow._client`` are fine, that is how the package
  is laid out);
* importing ``singularity_workflow.cli`` from anywhere but the CLI itself and ``__main__``;
* importing anything but ``__version__`` from the package root, which re-exports the top;
* an import cycle, even within one layer (modules that need each other are one module, or
  share a lower one).

Every import counts, at module level or inside a function (a lazy import is still a
dependency). Usage: ``check_layers.py [package directory]``; exit status 1 lists each violation.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "singularity_workflow"

#: Lowest layer first: (layer name, module patterns relative to the package). First match wins.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Value types and errors: import nothing of this package.
    ("values", ("_types", "_errors", "_names")),
    # Observability over the standard library (and OpenTelemetry when installed): structured
    # logs, the Prometheus text format, tracing; anything above may log, count and trace.
    ("observability", ("_logging", "_metrics", "_tracing")),
    # Pure Python below the database layer: message types, definitions and their rules, the
    # installer's file reader.
    ("model", ("_messages", "definitions", "definitions._*", "_install")),
    # Connections, error mapping, JSON; the Operation type and its executors.
    ("db", ("_db",)),
    # Each engine call, defined once as data.
    ("operations", ("_operations", "_operations.*")),
    # The client facade.
    ("client", ("_client",)),
    # The async client: its base (async connections, the replay) and the generated facade.
    ("async client", ("_aio", "_async_client")),
    # What runs on the client: lifecycle functions, listening, the worker, start-and-wait,
    # the builder of dynamic flows, messaging.
    (
        "engine",
        (
            "_lifecycle",
            "_listen",
            "_notif*",
            "worker",
            "worker.*",
            "_run",
            "_start",
            "messaging",
            "messaging.*",
            "definitions.builder",
        ),
    ),
    # Applications of the engine.
    ("apps", ("goals", "goals.*", "_demo")),
    # The pytest plugin for users' tests: provisions databases, drives workers.
    ("testing", ("testing",)),
    # User interfaces.
    ("interfaces", ("dashboard", "dashboard.*", "cli", "cli.*")),
    # The package root and ``python -m``.
    ("root", ("", "__main__")),
]


#: Imports of a private name that are known and due to go, as (importer, imported, name). Each
#: entry is a debt: the module that owns the name should make it public or the importer stop
#: needing it.
KNOWN_PRIVATE_IMPORTS: frozenset[tuple[str, str, str]] = frozenset()


@dataclass(frozen=True)
class Violation:
    """One import that breaks a rule."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def layer_of(module: str) -> int | None:
    """Return the index in ``LAYERS`` of ``module`` (relative name), or None if unplaced."""
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return index
    return None


def module_name(package_dir: Path, path: Path) -> str:
    """Return the dotted name of ``path`` relative to the package ('' for its ``__init__``)."""
    parts = list(path.relative_to(package_dir).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(package_dir: Path, relative: str) -> bool:
    """Tell whether ``relative`` (dotted, relative to the package) names a module or package."""
    base = package_dir.joinpath(*relative.split(".")) if relative else package_dir
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str, list[str]]]:
    """Yield ``(line, imported module relative to the package, names)`` for our imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield node.lineno, alias.name[len(PACKAGE) + 1 :], []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if module else []
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
                target = (node.module or "")[len(PACKAGE) + 1 :]
            else:
                continue
            yield node.lineno, target, [a.name for a in node.names]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle (a list of modules, first repeated last) per strongly connected group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        # Tarjan's algorithm; the package has a few dozen modules, so recursion is fine.
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [[*g, g[0]] for g in groups]


def check(package_dir: Path) -> list[Violation]:
    """Return every violation of the rules in the package at ``package_dir``."""
    found: list[Violation] = []
    # Module -> modules it imports (the root package left out: importing its __version__ is
    # allowed from anywhere and would close a loop with everything the root re-exports).
    edges: dict[str, set[str]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        module = module_name(package_dir, path)
        own = layer_of(module)
        if own is None:
            found.append(
                Violation(path, 1, f"module {module!r} has no layer: add it to LAYERS here")
            )
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, target, names in _imports(tree, module, path.name == "__init__.py"):
            # `from pkg import sub` imports the module pkg.sub: judge that module, not pkg.
            targets: list[tuple[str, str | None]] = []
            names_or_none: list[str | None] = list(names) or [None]
            for name in names_or_none:
                sub = f"{target}.{name}" if target and name else (name or "")
                if name is not None and _is_module(package_dir, sub):
                    targets.append((sub, None))
                else:
                    targets.append((target, name))
            for imported, name in targets:
                if imported and module and imported != module:
                    edges.setdefault(module, set()).add(imported)
                if imported == "":
                    if module and name != "__version__":
                        found.append(Violation(path, line, (
                            f"{module} imports {name!r} from the package root; import it from"
                            " the module that defines it")))
                    continue
                if (
                    name is not None
                    and name.startswith("_")
                    and imported != module
                    and (module, imported, name) not in KNOWN_PRIVATE_IMPORTS
                ):
                    found.append(Violation(path, line, (
                        f"{module} imports the private name {name} of {imported}")))
                top = imported.split(".")[0]
                if top == "cli" and not (module == "__main__" or module.split(".")[0] == "cli"):
                    found.append(Violation(path, line, f"{module} imports the CLI ({imported})"))
                theirs = layer_of(imported)
                if theirs is None:
                    continue  # reported where that module is checked
                if theirs > own:
                    found.append(Violation(path, line, (
                        f"{module} (layer {LAYERS[own][0]}) imports {imported}"
                        f" (layer {LAYERS[theirs][0]}, higher)")))
    for cycle in _cycles(edges):
        found.append(Violation(package_dir, 1, "import cycle: " + " -> ".join(cycle)))
    return found


def main(argv: list[str]) -> int:
    """Check the package directory given (default: python/singularity_workflow); print findings."""
    root = Path(__file__).resolve().parents[1]
    package_dir = Path(argv[1]) if len(argv) > 1 else root / "python" / PACKAGE
    violations = check(package_dir)
    for v in violations:
        print(v, file=sys.stderr)
    modules = sum(1 for _ in package_dir.rglob("*.py"))
    print(f"layers: {modules} module(s) checked, {len(violations)} violation(s)")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
