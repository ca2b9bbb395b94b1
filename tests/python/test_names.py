"""Python's name rules (``_names``) accept exactly the names the database accepts.

The database is the authority (``workflow._validate_name``, ``workflow._normalize_step``); Python
checks first with its own copies of the patterns. This test fails when the two drift: it asks
both about a few hundred names around every boundary of each rule (each ASCII character first
and later in a name, every length up to past the limit, the reserved words and prefixes), in
one query, and compares the answers.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import psycopg
import pytest

from singularity_workflow._names import (
    CHANNEL_NAME,
    FLOW_NAME,
    QUEUE_NAME,
    RESERVED_CHANNEL_PREFIXES,
    RESOURCE_NAME,
    STEP_NAME,
)

#: Python's check of each kind of name, as the package applies it.
PYTHON_RULES: dict[str, Callable[[str], bool]] = {
    "flow": lambda v: FLOW_NAME.match(v) is not None,
    "step": lambda v: STEP_NAME.match(v) is not None and v != "run",
    "queue": lambda v: QUEUE_NAME.match(v) is not None,
    "channel": lambda v: CHANNEL_NAME.match(v) is not None
    and not v.startswith(RESERVED_CHANNEL_PREFIXES),
    "resource": lambda v: RESOURCE_NAME.match(v) is not None,
}

# The server's answer for one name: _validate_name for the kinds it knows; resources are
# checked by _normalize_step, so ask it with a one-step definition.
SERVER_CHECK = """
create function pg_temp.accepts(kind text, value text) returns boolean
language plpgsql as $$
begin
    if kind = 'resource' then
        perform workflow._normalize_step(
            jsonb_build_object('slug', 's', 'resources', jsonb_build_array(value)));
    else
        perform workflow._validate_name(kind, value);
    end if;
    return true;
exception when sqlstate 'WF001' or sqlstate 'WF010' then
    return false;
end;
$$;
"""


def samples() -> list[str]:
    """Names around every boundary: each printable ASCII character first and later, lengths."""
    chars = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"]
    names = list(chars) + [f"a{c}" for c in chars] + [f"a{c}b" for c in chars]
    names += ["a" * n for n in range(1, 131)]
    names += ["run", "Run", "runs", "workflow_q_x", "workflow_run_x", "workflow_x", "9a", "_"]
    return names


def test_python_and_the_server_accept_the_same_names(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    conn.execute(SERVER_CHECK)
    names = samples()
    drift = []
    for kind, python_accepts in PYTHON_RULES.items():
        rows = conn.execute(
            "select v, pg_temp.accepts(%s, v) from unnest(%s::text[]) as v", [kind, names]
        ).fetchall()
        assert len(rows) == len(names)
        drift += [(kind, v, server) for v, server in rows if python_accepts(v) != server]
        # The sample must exercise both answers, or it proves nothing.
        assert {server for _, server in rows} == {True, False}, kind
    assert drift == [], f"Python and the server disagree on (kind, name, server says): {drift}"


@pytest.mark.unit
def test_the_samples_reach_past_every_length_limit() -> None:
    longest = max(len(n) for n in samples())
    assert longest > 128  # the longest rule (flow slugs) allows 128 characters
