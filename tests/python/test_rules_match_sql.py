"""Python's copies of the definition rules equal the SQL's (``workflow.definition_rules()``).

The package checks names and step options before a definition reaches the database, so that a
mistake is reported with the step it is in and no round trip. Those checks are copies of rules
that live in SQL (``definition_rules.sql``, read by ``_validate_name``, ``_normalize_step`` and
``_emit_events``). These tests read the SQL object and fail on any drift: a pattern, a length
limit, a reserved name, an option name, a default, a minimum, the event -> status map, the run
states the dashboard filters by.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from singularity_workflow import _messages, _names
from singularity_workflow._errors import DefinitionError
from singularity_workflow.dashboard import _app, _queries
from singularity_workflow.definitions import StepDef, _model, _rules

# Python's step options are the SQL ones with the map step spelt differently: ``map`` (True or
# the step it maps over) stands for SQL's ``type`` plus ``map_over``; the slug is the name the
# step is given, not an option.
SQL_ONLY_OPTIONS = {"slug", "type", "map_over"}
PYTHON_ONLY_OPTIONS = {"map"}


@pytest.fixture(scope="module")
def rules(db_url: str) -> dict[str, Any]:
    """Return the object ``workflow.definition_rules()`` returns."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select workflow.definition_rules()").fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def build(options: dict[str, Any], name: str = "a") -> StepDef:
    """Validate one step as the decorator and the list form do (nothing is registered)."""
    return _model.build_step("tests.rules", name, lambda x: x, options, lambda _: None)


def body(pattern: re.Pattern[str] | str) -> str:
    """Return a pattern without its anchors (Python's fullmatch patterns carry none)."""
    text = pattern if isinstance(pattern, str) else pattern.pattern
    return text.removeprefix("^").removesuffix("$")


def test_name_patterns_equal_the_sql_ones(rules: dict[str, Any]) -> None:
    names = rules["names"]
    assert body(_names.FLOW_NAME) == body(names["flow"]["pattern"])
    assert body(_names.STEP_NAME) == body(names["step"]["pattern"])
    assert body(_names.QUEUE_NAME) == body(names["queue"]["pattern"])
    assert body(_names.RESOURCE_NAME) == body(names["resource"]["pattern"])
    assert body(_names.QUEUE_NAME) == body(names["queue"]["pattern"])
    assert body(_names.CHANNEL_NAME) == body(names["channel"]["pattern"])
    assert body(_names.CHANNEL_NAME) == body(names["channel"]["pattern"])


def test_length_limits_and_reserved_names_hold_in_python(rules: dict[str, Any]) -> None:
    names = rules["names"]
    for kind, pattern in [
        ("flow", _names.FLOW_NAME),
        ("step", _names.STEP_NAME),
        ("queue", _names.QUEUE_NAME),
        ("resource", _names.RESOURCE_NAME),
        ("channel", _names.CHANNEL_NAME),
    ]:
        limit = names[kind]["max_length"]
        assert re.fullmatch(body(pattern), "a" * limit), f"{kind}: {limit} characters refused"
        assert not re.fullmatch(body(pattern), "a" * (limit + 1)), f"{kind}: {limit + 1} accepted"
    assert names["step"]["reserved"] == ["run"]
    with pytest.raises(DefinitionError):
        build({}, name="run")
    prefixes = tuple(names["channel"]["reserved_prefixes"])
    assert prefixes == _names.RESERVED_CHANNEL_PREFIXES
    assert _app._is_channel("x")
    for prefix in prefixes:
        assert not _app._is_channel(prefix + "x"), prefix


def test_step_option_names_equal_the_sql_ones(rules: dict[str, Any]) -> None:
    sql_options = set(rules["step_options"])
    expected = (sql_options - SQL_ONLY_OPTIONS) | PYTHON_ONLY_OPTIONS
    assert set(_rules.OPTION_NAMES) == expected
    # FlowBuilder.add_step takes depends_on positionally, so its option set lacks only that.
    assert set(_rules.STEP_OPTIONS) == expected - {"depends_on"}


def test_step_defaults_equal_the_sql_ones(rules: dict[str, Any]) -> None:
    sql = rules["step_defaults"]
    py = _rules.STEP_DEFAULTS
    assert py["execution"] == sql["execution"]
    assert list(py["depends_on"]) == sql["depends_on"]
    assert list(py["resources"]) == sql["resources"]
    for key in ("max_attempts", "timeout", "base_delay", "start_delay"):
        assert py[key] == sql[key], key
    # map False is SQL's single step without map_over.
    assert (py["map"], sql["type"], sql["map_over"]) == (False, "single", None)
    # No queue given: Python leaves it to the execution, as SQL's default_queues do.
    assert py["queue"] is None
    for execution, queue in rules["default_queues"].items():
        assert build({"execution": execution}).queue == queue, execution
    assert build({}).execution == sql["execution"]
    assert StepDef.__dataclass_fields__["execution"].default == sql["execution"]


def test_step_minimums_and_maximum_equal_the_sql_ones(rules: dict[str, Any]) -> None:
    for key, least in rules["step_minimums"].items():
        assert getattr(build({key: least}), key) == least
        with pytest.raises(DefinitionError):
            build({key: least - 1})
    top = rules["integer_max"]
    assert build({"timeout": top}).timeout == top
    with pytest.raises(DefinitionError):
        build({"timeout": top + 1})


def test_event_statuses_equal_the_sql_ones(rules: dict[str, Any]) -> None:
    assert _messages._EVENT_STATUS == rules["event_statuses"]


def test_dashboard_run_states_equal_the_sql_ones(rules: dict[str, Any]) -> None:
    assert list(_app.STATES) == rules["run_states"]


def test_dashboard_state_filters_select_what_run_state_names(db_url: str) -> None:
    # Every reachable combination of stored status and pause/cancel marks, filtered by each
    # dashboard predicate and named by workflow.run_state: both must pick the same rows. A
    # cancelled run is always 'failed' (_cancel_runs sets both in one update), so cancelled_at
    # appears only beside that status.
    combos = (
        "select * from (values ('started'), ('completed'), ('failed')) as s (status)"
        " cross join (values (null::timestamptz), (now())) as p (paused_at)"
        " cross join (values (null::timestamptz), (now())) as c (cancelled_at)"
        " where c.cancelled_at is null or s.status = 'failed'"
    )
    with psycopg.connect(db_url) as conn:
        for state, predicate in _queries.RUN_STATE_FILTERS.items():
            if state is None:
                continue
            picked = conn.execute(
                f"select r.status, r.paused_at is null, r.cancelled_at is null"  # noqa: S608
                f" from ({combos}) as r where {predicate} order by 1, 2, 3"
            ).fetchall()
            named = conn.execute(
                f"select r.status, r.paused_at is null, r.cancelled_at is null"  # noqa: S608
                f" from ({combos}) as r"
                " where workflow.run_state(r.status, r.paused_at, r.cancelled_at) = %s"
                " order by 1, 2, 3",
                (state,),
            ).fetchall()
            assert picked == named, state
            assert picked, f"no combination is {state}"
