"""Every fenced code block of README.md and docs/*.md is executed, or skipped with a reason.

Conventions (an HTML comment on the line before a block; invisible when rendered):

* ```` ```sql ```` blocks run by default, with psql, all blocks of one file in order in ONE
  session on a fresh database that has the schema (a block may use what an earlier one made);
* ```` ```python ```` blocks run by default, all blocks of one file in order in one interpreter
  (a subprocess with ``DATABASE_URL`` set to a fresh database of their own), like a REPL
  session; ``<!-- run: worker=QUEUE[,QUEUE] [resources=NAME[,NAME]] -->`` serves those queues
  from a :class:`~singularity_workflow.Worker` thread (offering those resources) while the block
  runs, for blocks whose distributed steps would otherwise wait for a worker process that the
  reader starts by hand;
* ```` ```sh ````, ```` ```console ```` and every other block run only when marked
  ``<!-- run -->`` (sh: the block under ``bash -euo pipefail``; console: each ``$ `` line), in
  the repository root with ``DATABASE_URL`` set to the file's fresh database and the virtualenv
  first on PATH;
* ``<!-- no-run: REASON -->`` skips a block (a pip install from PyPI, docker, a server that runs
  until stopped); a marker without a reason is an error;
* ``<!-- output -->`` before a block says it is the output of the previous executed block, which
  must match it (``...`` stands for any text, e.g. a run id or a timing);
* ```` ```mermaid ```` diagrams are not run, but must start with a known diagram type;
* docs/sql-reference.md is generated from the function headers: each of its ```` ```sql ````
  blocks is a signature, checked against the installed functions (name, argument names and
  types), so a signature that no longer exists fails here.

``test_every_block_is_run_or_skipped_with_a_reason`` fails on any block that none of these
covers, so a new page cannot add a block that nobody runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.fixtures import create_database, database_url, drop_database

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SIGNATURE_FILE = ROOT / "docs" / "sql-reference.md"
MERMAID_TYPES = ("stateDiagram-v2", "stateDiagram", "flowchart", "graph", "sequenceDiagram",
                 "erDiagram", "classDiagram")
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(run|no-run|output)(?:\s*:\s*(.*?))?\s*-->\s*$")
SEPARATOR = "----- sw-docs-block {} -----"


@dataclass
class Block:
    """One fenced block: where it is, its language, its text and the marker before it."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    marker: str | None = None  # run | no-run | output
    arg: str = ""
    output_of: Block | None = None  # for an output block: the block it shows the output of
    expected: list[Block] = field(default_factory=list)  # output blocks that follow this one

    @property
    def where(self) -> str:
        """The block's place, as file:line."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        """What the test does with it: sql, python, shell, output, mermaid, signature, skip."""
        if self.marker == "no-run":
            return "skip"
        if self.marker == "output":
            return "output"
        if self.lang == "mermaid":
            return "mermaid"
        if self.lang == "sql":
            return "signature" if self.path == SIGNATURE_FILE else "sql"
        if self.lang == "python":
            return "python"
        if self.marker == "run" and self.lang in ("sh", "bash", "console", "shell"):
            return "shell"
        return "unhandled"


def parse(path: Path) -> list[Block]:
    """Return the fenced blocks of a markdown file, with their markers."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        block = Block(path, start + 1, m.group(1), "\n".join(body) + "\n")
        prev = start - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        mm = MARKER.match(lines[prev]) if prev >= 0 else None
        if mm is not None:
            block.marker, block.arg = mm.group(1), (mm.group(2) or "")
        if block.marker == "output":
            runnable = [b for b in blocks if b.kind in ("sql", "python", "shell")]
            if runnable:
                block.output_of = runnable[-1]
                runnable[-1].expected.append(block)
        blocks.append(block)
        i += 1
    return blocks


ALL_BLOCKS = [b for path in DOC_FILES for b in parse(path)]


def _by_kind(path: Path, kind: str) -> list[Block]:
    return [b for b in ALL_BLOCKS if b.path == path and b.kind == kind]


def _files_with(kind: str) -> list[Path]:
    return [p for p in DOC_FILES if _by_kind(p, kind)]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def matches(expected: str, actual: str) -> bool:
    """Tell whether ``actual`` matches ``expected``, where ``...`` stands for any text."""
    norm_e = "\n".join(line.rstrip() for line in expected.strip("\n").splitlines())
    norm_a = "\n".join(line.rstrip() for line in actual.strip("\n").splitlines())
    pattern = ".*?".join(re.escape(part) for part in norm_e.split("..."))
    return re.fullmatch(pattern, norm_a, re.DOTALL) is not None


def check_outputs(block: Block, actual: str) -> None:
    """Fail unless every output block that follows ``block`` matches what it printed."""
    for out in block.expected:
        assert matches(out.code, actual), (
            f"{out.where}: the output of {block.where} differs from the documented one\n"
            f"--- documented\n{out.code}--- actual\n{actual}"
        )


@pytest.fixture
def file_database(template_database: str) -> Iterator[str]:
    """Give one documentation file a fresh database that has the schema."""
    name = create_database("sw_docs", template=template_database)
    try:
        yield database_url(name)
    finally:
        drop_database(name)


# --------------------------------------------------------------------------------------------
# Coverage of the conventions
# --------------------------------------------------------------------------------------------


def test_every_block_is_run_or_skipped_with_a_reason() -> None:
    problems = []
    for b in ALL_BLOCKS:
        if b.kind == "unhandled":
            problems.append(f"{b.where}: ```{b.lang} block is neither run nor skipped: put"
                            " <!-- run --> or <!-- no-run: reason --> before it")
        elif b.marker == "no-run" and not b.arg.strip():
            problems.append(f"{b.where}: <!-- no-run --> needs a reason")
        elif b.kind == "output" and b.output_of is None:
            problems.append(f"{b.where}: <!-- output --> follows no executed block")
    assert not problems, "\n".join(problems)
    assert any(b.kind == "python" for b in ALL_BLOCKS) and any(b.kind == "sql" for b in ALL_BLOCKS)


def test_the_parser_sees_markers_outputs_and_unmarked_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent("""\
        <!-- run -->
        ```sh
        echo hi
        ```
        <!-- output -->
        ```text
        h...i
        ```
        <!-- no-run: needs docker -->
        ```sh
        docker compose up
        ```

        ```sh
        rm -rf /
        ```
        """))
    blocks = parse(page)
    assert [b.kind for b in blocks] == ["shell", "output", "skip", "unhandled"]
    assert blocks[1].output_of is blocks[0] and blocks[2].arg == "needs docker"
    assert matches(blocks[1].code, "hi\n") and not matches(blocks[1].code, "ho\n")


# --------------------------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _files_with("sql"), ids=_ids(_files_with("sql")))
def test_sql_blocks_run_in_psql(path: Path, file_database: str) -> None:
    blocks = _by_kind(path, "sql")
    script = ""
    for n, b in enumerate(blocks):
        script += f"\\echo '{SEPARATOR.format(n)}'\n{b.code}\n"
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", file_database],
        input=script, capture_output=True, text=True, timeout=120, check=False,
    )
    parts = re.split(r"^----- sw-docs-block (\d+) -----\n", result.stdout, flags=re.M)
    outputs = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if result.returncode != 0:
        failed = blocks[max(outputs, default=0)]
        pytest.fail(f"{failed.where}: psql failed\n{result.stderr}")
    for n, b in enumerate(blocks):
        check_outputs(b, outputs.get(n, ""))


_DRIVER = r'''
import json, os, subprocess, sys, traceback
from singularity_workflow import Worker

blocks = json.load(sys.stdin)
namespace = {"__name__": "__docs__"}
for n, block in enumerate(blocks):
    print("----- sw-docs-block %d -----" % n, flush=True)
    if block["shell"] is not None:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block["shell"]],
                              stdout=subprocess.PIPE, text=True)
        sys.stdout.write(done.stdout)
        if done.returncode != 0:
            print("%s: exit status %d" % (block["where"], done.returncode), file=sys.stderr)
            sys.exit(1)
        continue
    worker = None
    if block["worker"]:
        worker = Worker(os.environ["DATABASE_URL"], block["worker"],
                        resources=block["resources"], poll_interval=0.5)
        worker.run_in_thread()
    try:
        exec(compile(block["code"], block["where"], "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    finally:
        sys.stdout.flush()
        if worker is not None:
            worker.stop()
            worker.join(10)
'''


def _shell_script(block: Block) -> str:
    """Return the shell text of a run-marked block (a console block's ``$`` lines)."""
    if block.lang != "console":
        return block.code
    commands = [line[2:] for line in block.code.splitlines() if line.startswith("$ ")]
    assert commands, f"{block.where}: a console block needs '$ ' command lines"
    return "\n".join(commands) + "\n"


def _session_files() -> list[Path]:
    return [p for p in DOC_FILES if _by_kind(p, "python") or _by_kind(p, "shell")]


@pytest.mark.parametrize("path", _session_files(), ids=_ids(_session_files()))
def test_python_and_shell_blocks_run_in_order(path: Path, file_database: str) -> None:
    """A file's python and shell blocks, in document order, in one session and database."""
    blocks = [b for b in ALL_BLOCKS if b.path == path and b.kind in ("python", "shell")]
    payload = []
    for b in blocks:
        options = dict(part.split("=", 1) for part in b.arg.split() if "=" in part)
        if b.marker == "run" and (set(options) - {"worker", "resources"}
                                  or len(options) != len(b.arg.split())
                                  or (options and b.kind != "python")):
            pytest.fail(f"{b.where}: unknown run options {b.arg!r}")
        worker = options["worker"].split(",") if "worker" in options else []
        resources = options["resources"].split(",") if "resources" in options else []
        payload.append({
            # Leading newlines: line numbers in tracebacks point into the markdown file.
            "code": "\n" * b.line + b.code,
            "where": b.where,
            "worker": worker,
            "resources": resources,
            "shell": _shell_script(b) if b.kind == "shell" else None,
        })
    venv_bin = str(Path(sys.executable).parent)
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps(payload), capture_output=True, text=True, timeout=240, cwd=ROOT,
        env={**os.environ, "DATABASE_URL": file_database,
             "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")},
        check=False,
    )
    parts = re.split(r"^----- sw-docs-block (\d+) -----\n", result.stdout, flags=re.M)
    outputs = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if result.returncode != 0:
        failed = blocks[max(outputs, default=0)]
        pytest.fail(f"{failed.where}: the block failed\n{result.stderr}")
    for n, b in enumerate(blocks):
        check_outputs(b, outputs.get(n, ""))


# --------------------------------------------------------------------------------------------
# Blocks that are checked rather than run
# --------------------------------------------------------------------------------------------


def _mermaid_blocks() -> list[Block]:
    return [b for b in ALL_BLOCKS if b.kind == "mermaid"]


@pytest.mark.parametrize("block", _mermaid_blocks(), ids=[b.where for b in _mermaid_blocks()])
def test_mermaid_blocks_declare_a_diagram_type(block: Block) -> None:
    first = next(line.strip() for line in block.code.splitlines() if line.strip())
    assert first.split()[0] in MERMAID_TYPES, f"{block.where}: unknown diagram type {first!r}"


def split_args(args: str) -> list[str]:
    """Split an argument list on the commas that are not inside parentheses or quotes."""
    out, depth, quote, cur = [], 0, False, ""
    for ch in args:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def test_reference_signatures_are_the_installed_functions(db_url: str) -> None:
    blocks = [b for b in ALL_BLOCKS if b.kind == "signature"]
    assert blocks, "docs/sql-reference.md has no signature blocks"
    problems = []
    with psycopg.connect(db_url) as conn:
        for b in blocks:
            m = re.match(r"(workflow\.\w+)\((.*)\)\nreturns ", b.code, re.DOTALL)
            if m is None:
                problems.append(f"{b.where}: not a signature: {b.code!r}")
                continue
            names, types = [], []
            for arg in split_args(m.group(2)):
                decl = re.split(r"\s+default\s+", arg, maxsplit=1, flags=re.I)[0].split()
                names.append(decl[0])
                types.append(" ".join(decl[1:]))
            row = conn.execute(
                "select p.proargnames[1:%s] from pg_proc p"
                " where p.oid = to_regprocedure(%s)",
                [len(names), f"{m.group(1)}({', '.join(types)})"],
            ).fetchone()
            if row is None:
                signature = f"{m.group(1)}({', '.join(types)})"
                problems.append(f"{b.where}: no installed function {signature}")
            elif names and list(row[0] or []) != names:
                problems.append(f"{b.where}: argument names {row[0]} in the database, {names} here")
    assert not problems, "\n".join(problems)
