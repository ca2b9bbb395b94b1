"""Generate ``python/singularity_workflow/_async_client.py`` from the sync sources.

The sync client is the one source (psycopg keeps the same rule the other way round: its sync
code is generated from its async code, and CI fails when the committed file differs from a
fresh run). Here ``Client`` came first and is where operations are added, so the async side is
derived from it:

* every public ``Client`` method whose body calls ``self.call(...)`` becomes an ``async def``
  of ``AsyncClient`` with the same parameters, defaults and docstring (``psycopg.Connection``
  read as ``psycopg.AsyncConnection``), whose body replays the sync method (``_aio``);
* every module-level function of ``_lifecycle``, ``_listen`` and ``_start`` that takes
  ``client: Client | None`` and is one call of a client method becomes ``<name>_async`` over
  ``AsyncClient`` (the default one of the running loop when ``client`` is None).

A ``Client`` method that uses the result of ``self.call`` (rather than returning or discarding
it) cannot be replayed and stops the generator with its name. Usage:
``gen_async_client.py [--check]``; ``--check`` exits 1 when the committed file is stale.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "singularity_workflow"
TARGET = PACKAGE / "_async_client.py"
MODULES = ("_lifecycle", "_listen", "_start")

HEADER = '''"""The asyncio client: every operation of ``Client``, awaited. GENERATED, do not edit.

Made by ``scripts/gen_async_client.py`` from ``_client.py`` and the module-level functions of
``_lifecycle``, ``_listen`` and ``_start``; a test fails when this file differs from a fresh run
(``make gen-async``). Connections, the event-loop rule and close are in ``_aio``.
"""

from __future__ import annotations

import psycopg

from singularity_workflow._aio import AsyncClientBase, default_for_loop
from singularity_workflow._client import Client
{imports}

__all__ = ["AsyncClient", "default_async_client", {names}]


class AsyncClient(AsyncClientBase):
    """Typed async access to the engine's SQL functions; the async twin of ``Client``.

    Takes a connection string, a ``psycopg.AsyncConnection``, an open
    ``psycopg_pool.AsyncConnectionPool`` or nothing (``DATABASE_URL``). Every method is
    ``Client``'s, awaited; see ``Client`` and ``_aio`` for the rules.
    """
'''

FOOTER = '''

def default_async_client() -> AsyncClient:
    """Return the running event loop's client over ``DATABASE_URL`` (one per loop)."""
    return default_for_loop(AsyncClient)


def _client(client: AsyncClient | None) -> AsyncClient:
    return client if client is not None else default_async_client()
'''


def _calls_self_call(node: ast.AST) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "call"
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "self"
    ]


def _check_replayable(fn: ast.FunctionDef) -> None:
    """Refuse a method that uses ``self.call``'s result other than returning or discarding it."""
    allowed = {
        id(stmt.value)
        for stmt in ast.walk(fn)
        if isinstance(stmt, ast.Return | ast.Expr) and isinstance(stmt.value, ast.Call)
    }
    for call in _calls_self_call(fn):
        if id(call) not in allowed:
            raise SystemExit(
                f"Client.{fn.name}: the result of self.call(...) must be returned or discarded"
                " (the async client replays the method body)"
            )


def _async_text(source: str) -> str:
    return source.replace("psycopg.Connection[", "psycopg.AsyncConnection[")


def _forward(args: ast.arguments, skip: tuple[str, ...]) -> str:
    """Return the argument list passing every parameter of ``args`` on, by position or keyword."""
    parts = [a.arg for a in [*args.posonlyargs, *args.args] if a.arg not in skip]
    parts += [f"{a.arg}={a.arg}" for a in args.kwonlyargs if a.arg not in skip]
    return ", ".join(parts)


def _docstring(fn: ast.FunctionDef) -> str:
    doc = ast.get_docstring(fn, clean=False) or ""
    return '"""' + doc.replace("\\", "\\\\") + '"""'


def _method(fn: ast.FunctionDef) -> str:
    _check_replayable(fn)
    args = _async_text(ast.unparse(fn.args))
    returns = ast.unparse(fn.returns) if fn.returns else "None"
    forward = _forward(fn.args, ("self",))
    call = f"await self._replay(Client.{fn.name}{', ' if forward else ''}{forward})"
    body = call if returns == "None" else f'return cast("{returns}", {call})'
    return (
        f"\n    async def {fn.name}({args}) -> {returns}:\n"
        f"        {_docstring(fn)}\n        {body}\n"
    )


def _module_function(fn: ast.FunctionDef, methods: set[str]) -> str | None:
    """Return the async form of a one-call module function over ``client``, or None."""
    client_args = [a for a in fn.args.kwonlyargs if a.arg == "client"]
    if not client_args or ast.unparse(client_args[0].annotation or ast.Constant(None)) != (
        "Client | None"
    ):
        return None
    body = [
        s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    if len(body) != 1 or not isinstance(body[0], ast.Return | ast.Expr):
        return None
    call = body[0].value
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in methods
        and "client" in {n.id for n in ast.walk(call.func.value) if isinstance(n, ast.Name)}
    ):
        return None
    args = ast.unparse(fn.args).replace("client: Client | None", "client: AsyncClient | None")
    returns = ast.unparse(fn.returns) if fn.returns else "None"
    inner = ", ".join(
        [ast.unparse(a) for a in call.args]
        + [
            f"{k.arg}={ast.unparse(k.value)}" if k.arg else f"**{ast.unparse(k.value)}"
            for k in call.keywords
        ]
    )
    await_ = f"await _client(client).{call.func.attr}({inner})"
    doc = _docstring(fn)
    stmt = await_ if returns == "None" else f"return {await_}"
    return f"\n\nasync def {fn.name}_async({args}) -> {returns}:\n    {doc}\n    {stmt}\n"


def _imports(tree: ast.Module) -> dict[str, str]:
    """Map each name a module imports at top level to the import statement that gives it."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            for alias in node.names:
                found[alias.asname or alias.name] = f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name] = f"import {alias.name}"
    return found


def render() -> str:
    """Return the text of ``_async_client.py``, formatted as the committed file is."""
    client_tree = ast.parse((PACKAGE / "_client.py").read_text())
    cls = next(n for n in client_tree.body if isinstance(n, ast.ClassDef) and n.name == "Client")
    available = _imports(client_tree)
    methods = [
        n
        for n in cls.body
        if isinstance(n, ast.FunctionDef)
        and not n.name.startswith("_")
        and n.name != "call"
        and _calls_self_call(n)
    ]
    body = "".join(_method(fn) for fn in methods)
    functions: list[str] = []
    names: list[str] = []
    for module in MODULES:
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        available = {**_imports(tree), **available}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                text = _module_function(node, {fn.name for fn in methods})
                if text is not None:
                    functions.append(text)
                    names.append(f"{node.name}_async")
    text = body + "".join(functions)
    used = {n.id for n in ast.walk(ast.parse(HEADER + text + FOOTER)) if isinstance(n, ast.Name)}
    # Names inside the string annotations of cast("...") count too.
    for const in ast.walk(ast.parse(HEADER + text)):
        if isinstance(const, ast.Constant) and isinstance(const.value, str):
            try:
                used |= {
                    n.id
                    for n in ast.walk(ast.parse(const.value, mode="eval"))
                    if isinstance(n, ast.Name)
                }
            except SyntaxError:
                pass
    imports = sorted(
        {available[name] for name in used if name in available}
        - {"import psycopg", "from singularity_workflow._client import Client"}
        - {available.get(own) for own in ("AsyncClient", "default_async_client", "_client")}
    )
    imports.append("from typing import cast")
    source = (
        HEADER.format(imports="\n".join(imports), names=", ".join(f'"{n}"' for n in names))
        + text
        + FOOTER
    )
    return _format(source)


def _format(source: str) -> str:
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(ROOT / "python" / "pyproject.toml")]
    fixed = subprocess.run(
        [
            *ruff,
            "check",
            *config,
            "--select",
            "I,F401",
            "--fix",
            "--quiet",
            "--stdin-filename",
            str(TARGET),
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return subprocess.run(
        [*ruff, "format", *config, "--stdin-filename", str(TARGET), "-"],
        input=fixed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def main(argv: list[str]) -> int:
    """Write the file, or with ``--check`` report whether the committed one is current."""
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"{TARGET} is stale: run scripts/gen_async_client.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
