"""The documentation's SQL runs as written, and the generated reference is current.

A walkthrough that no test runs rots at the first rename; these tests execute it with psql
exactly as a reader would, and check that the README shows the same text.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sql_walkthrough_runs_in_psql_and_finishes_the_run(db_url: str) -> None:
    """docs/sql-walkthrough.sql defines a flow, drives it by hand and ends with a completed run."""
    result = subprocess.run(
        [
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-A",
            "-t",
            "-f",
            str(ROOT / "docs" / "sql-walkthrough.sql"),
            db_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == 'completed|{"save": {"saved": true}}|t'


def test_readme_shows_the_walkthrough_file() -> None:
    """The README's psql block is the walkthrough file minus its three-line preamble."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"## psql walkthrough.*?```sql\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "README has no ```sql block under '## psql walkthrough'"
    walkthrough = (ROOT / "docs" / "sql-walkthrough.sql").read_text().split("\n", 4)[4]
    assert match.group(1).strip() == walkthrough.strip()


def test_sql_reference_is_generated_from_the_current_headers() -> None:
    """docs/sql-reference.md matches what scripts/gen_sql_reference.py writes."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_sql_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_channel_name_rule_in_the_messaging_docs_is_the_engines() -> None:
    from singularity_workflow._names import CHANNEL_NAME

    text = (ROOT / "docs" / "messaging.md").read_text()
    stated = re.search(r"Channel names match `([^`]+)`", text)
    assert stated is not None
    assert stated.group(1) == CHANNEL_NAME.pattern
    longest = int(re.search(r"\{0,(\d+)\}", CHANNEL_NAME.pattern).group(1)) + 1  # type: ignore[union-attr]
    assert f"1 to {longest} characters" in text


def test_the_dashboard_extra_has_what_its_documented_example_imports() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "python" / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=\[ ]", dep, maxsplit=1)[0] for dep in extras["dashboard"]}
    example = (ROOT / "docs" / "dashboard.md").read_text()
    # Starlette's TestClient, which the embedding example uses, needs httpx.
    assert "from starlette.testclient import TestClient" in example
    assert {"starlette", "httpx"} <= names


def test_the_api_mapping_words_the_worker_serving_both_workflow_forms_as_true() -> None:
    text = (ROOT / "docs" / "api-mapping.md").read_text()
    assert "process would)" not in text
    assert "`__workflow_steps__`, and claims only the steps it has handlers for" in text
    assert "output, run_id = result" in text
