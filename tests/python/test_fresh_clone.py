"""A fresh clone works with the README's two commands: `make demo`, then the tests.

The repository's committed HEAD is cloned into a temporary directory (no virtualenv, no build
output, nothing untracked), and there:

* ``make demo`` must create the virtualenv by itself and run the demo to a completed run;
* the test command runs in a reduced form, ``make test-sql``: ``make test`` would run this very
  test again inside itself (and the pytest suite twice). ``test-sql`` goes through the same
  set-up as ``make test`` (virtualenv, the pgTAP / pg_prove check or install, a throwaway
  database, the schema install) and runs the whole pgTAP suite, so a clone whose set-up or SQL
  is broken fails here; pytest itself is what is running this test.

Both use the test server (``SW_TEST_ADMIN_URL`` / ``DATABASE_URL``), and the demo a throwaway
database ``sw_demo_<random>``. Creating the virtualenv installs the package and its dev tools,
which takes about a minute: the test is marked slow.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures import admin_url, drop_database

ROOT = Path(__file__).resolve().parents[2]
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    """Return the commands of the README's first-look block, in order."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"## First look.*?```sh\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "README has no ```sh block under '## First look'"
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Clone the repository's HEAD into a temporary directory, once for this module."""
    target = tmp_path_factory.mktemp("clone") / "singularity-workflow"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(target)],
                   check=True, timeout=120)
    try:
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


def clone_env(**extra: str) -> dict[str, str]:
    """Return the environment for commands in the clone: the test server, no outer virtualenv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(DATABASE_URL=admin_url(), **extra)
    return env


def server_has_pgtap() -> bool:
    """Tell whether the test server offers the pgTAP extension (the embedded one does not)."""
    with psycopg.connect(admin_url()) as conn:
        row = conn.execute("select 1 from pg_available_extensions where name = 'pgtap'")
        return row.fetchone() is not None


def test_the_readme_names_make_demo_and_make_test() -> None:
    assert readme_commands() == ["make demo", "make test"]


def test_make_demo_works_in_a_fresh_clone(clone: Path) -> None:
    assert not (clone / ".venv").exists()
    demo_db = f"sw_demo_{secrets.token_hex(4)}"
    try:
        demo = subprocess.run(["make", "demo"], cwd=clone, env=clone_env(SW_DEMO_DATABASE=demo_db),
                              capture_output=True, text=True, timeout=900, check=False)
    finally:
        drop_database(demo_db)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert (clone / ".venv" / "bin" / "singularity-workflow").exists()
    assert re.search(rf"^using DATABASE_URL: .*dbname={demo_db}", out, re.M), out
    assert re.search(rf"^run {UUID_RE}: completed in [\d.]+s \(4/4 steps\)$", out, re.M), out
    for step in ("fetch", "score", "profile", "report"):
        assert re.search(rf"^  {step} +(single|map) ", out, re.M), out
    assert '"report": {' in out and re.search(r"^demo finished in [\d.]+s$", out, re.M)


def test_the_test_set_up_and_pgtap_suite_work_in_a_fresh_clone(clone: Path) -> None:
    if not server_has_pgtap():
        pytest.skip("the test server has no pgTAP (e.g. the embedded one): make test-sql not run")
    tests = subprocess.run(["make", "test-sql"], cwd=clone, env=clone_env(),
                           capture_output=True, text=True, timeout=900, check=False)
    summary = tests.stderr.strip().splitlines()[-1] if tests.stderr.strip() else ""
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"SUMMARY: pgtap passed in \d+ s => PASS", summary), summary
