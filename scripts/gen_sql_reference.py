"""Generate docs/sql-reference.md from the headers of sql/functions/*.sql.

Each function file starts with a comment block saying what the function does, who calls it, what it
locks and in what order, the invariants it keeps, its errors and whether a repeat is safe
(docs/architecture.md, "Changing a SQL function").
This script lays those headers and the signatures out as one reference page, so the reference can
never drift from the code: ``--check`` exits 1 when the committed page differs from what it would
write (the test suite runs it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "sql" / "functions"
TARGET = ROOT / "docs" / "sql-reference.md"

_SIGNATURE = re.compile(
    r"create or replace function\s+(?P<name>[\w.]+)\s*\((?P<args>.*?)\)"
    r"\s*returns\s+(?P<returns>.*?)\n(?:language|as)",
    re.DOTALL | re.IGNORECASE,
)


def _entry(path: Path) -> str:
    """Render one function file as a markdown section: signature, then its header comment."""
    text = path.read_text()
    header = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        header.append(line[2:].removeprefix(" "))
    match = _SIGNATURE.search(text)
    if match is None:
        raise SystemExit(f"{path.name}: no 'create or replace function … returns …' found")
    args = " ".join(match["args"].split())
    returns = " ".join(match["returns"].split())
    title, _, rest = "\n".join(header).partition("\n")
    return (
        f"### `{match['name']}`\n\n"
        f"```sql\n{match['name']}({args})\nreturns {returns}\n```\n\n"
        f"{title.split(': ', 1)[-1]}\n{rest}\n"
    )


def render() -> str:
    """Render the page: public functions first, then internal helpers (`_name`)."""
    files = sorted(FUNCTIONS.glob("*.sql"))
    public = [f for f in files if not f.name.startswith("_")]
    internal = [f for f in files if f.name.startswith("_")]
    parts = [
        "# SQL function reference\n\n",
        "Generated from the headers of `sql/functions/*.sql` by\n"
        "`scripts/gen_sql_reference.py`; edit the SQL files, not this page. Every function runs\n"
        "with `search_path = ''` and `security invoker`. Error codes are listed in\n"
        "[errors.md](errors.md); the transitions in [state-machine.md](state-machine.md).\n\n",
        "Lock order, shared by every path that takes more than one kind of lock: tasks (by\n"
        "`task_id`) → queue messages → `step_states` (by run, step) → `runs` (by `run_id`).\n"
        "`claim_tasks` takes its locks with `SKIP LOCKED`, so it never waits on the others.\n\n",
        "## Public functions\n\n",
    ]
    parts += [_entry(f) + "\n" for f in public]
    parts.append(
        "## Internal helpers\n\nCalled only by the functions above; not part of the API.\n\n"
    )
    parts += [_entry(f) + "\n" for f in internal]
    return "".join(parts).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    """Write the page, or with --check report whether the committed page is current."""
    page = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != page:
            print(
                "docs/sql-reference.md is out of date: run python scripts/gen_sql_reference.py",
                file=sys.stderr,
            )
            return 1
        return 0
    TARGET.write_text(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
