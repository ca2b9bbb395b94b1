"""Fuzzed input (hypothesis) through the SQL functions and the Python API.

The contract under test (invariant 6 of docs/architecture.md): bad input gets a documented error and
changes nothing. Documented errors are a ``WorkflowError`` whose code is in the project's ``WF``
class, or, raised in Python before any SQL is sent, ``TypeError``/``ValueError`` for values that
cannot be stored (NUL characters and NaN in JSON, text that is not a UUID). Raw SQL calls may also
meet PostgreSQL's own input check of a parameter before any function runs: 22P05 for a NUL character
in jsonb (``\u0000 cannot be converted to text``) and 54001 for JSON nested deeper than the server's
stack allows (tens of thousands of levels): the server's documented refusals. Anything else (a
psycopg error with another SQLSTATE, a RecursionError, a crash) fails the test. After every error
the workflow tables and the queues must hash exactly as before.

Size: ``max_examples`` is modest for ``make test`` and raised with ``SW_FUZZ_EXAMPLES`` (``make
chaos`` runs 1,000 per property). Each property counts the cases it tried; the totals are
printed at the end of the module (``pytest -s``).
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from singularity_workflow import Client, WorkflowError

EXAMPLES = int(os.environ.get("SW_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 40,  # make test: the same cases every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
TRIED: Counter[str] = Counter()
# Every example hashes the database twice per call: scale pytest's per-test timeout with them.
pytestmark = pytest.mark.timeout(max(120, EXAMPLES))

# ------------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------------

#: Any text, with the awkward characters made likely: NUL, surrogates-free unicode, quotes.
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("\x00'\"\\%$;-_.:aZ0 é\u202e💥"), max_size=20),
    st.sampled_from(["", "run", "default", "local", "workflow_q_x", "workflow_run_x", "a" * 64,
                     "A.b:c-d", "_", "x" * 200, "pgmq", "q_default", "Robert'); drop table x;--"]),
)
names = st.one_of(texts, st.from_regex(r"\A[a-z_][a-z0-9_]{0,50}\Z"))
#: Queue names of exactly 48 characters pass the engine's rule but not pgmq's (test_known_sql_bugs).
queue_names = names.filter(lambda q: len(q) != 48)
#: Text arguments (names, payloads, error texts) without NUL: psycopg itself cannot send a NUL in
#: a text parameter (test_text_arguments_with_nul covers what the client does with one).
plain = names.map(lambda t: t.replace("\x00", ""))
plain_texts = texts.map(lambda t: t.replace("\x00", ""))
#: Channel names: a few valid ones (each valid name creates a pgmq queue, and every queue is
#: hashed after each error, so they are kept few) and any invalid text.
_VALID_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,42}")
channels = st.one_of(
    # 43 characters (valid by the rule, too long for pgmq): test_known_sql_bugs.
    st.sampled_from(["fz_a", "fz_b", "_", "x" * 42, "x" * 44, "workflow_q_x", "workflow_run_y",
                     "", "A", "1abc", "fz-a"]),
    plain_texts.filter(lambda c: _VALID_CHANNEL.fullmatch(c) is None),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(texts, inner, max_size=5)),
    max_leaves=25,
)
step_defs = st.fixed_dictionaries(
    {},
    optional={
        "slug": names,
        "depends_on": st.one_of(st.lists(names, max_size=3), json_values),
        "type": st.one_of(st.sampled_from(["single", "map"]), json_values),
        "map_over": st.one_of(names, json_values),
        "execution": st.one_of(st.sampled_from(["local", "distributed"]), json_values),
        "queue": st.one_of(queue_names, json_values),
        "max_attempts": st.one_of(st.integers(-5, 2**40), json_values),
        "base_delay": st.one_of(st.integers(-5, 100), json_values),
        "timeout": st.one_of(st.integers(-5, 2**40), json_values),
        "start_delay": st.one_of(st.integers(-5, 100), json_values),
        "resources": st.one_of(st.lists(names, max_size=3), json_values),
    },
)
flow_defs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"slug": names},
        # Flow timeouts of 2**31 and more: test_known_sql_bugs (the property avoids them).
        optional={"timeout": st.one_of(st.integers(-5, 2**31 - 1), json_values.filter(
            lambda v: not (isinstance(v, int) and v >= 2**31))),
                  "steps": st.one_of(st.lists(step_defs, max_size=4), json_values)},
    ),
)


def deep(depth: int, leaf: Any = 1) -> Any:
    """Return a value nested ``depth`` levels deep (alternating arrays and objects)."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# ------------------------------------------------------------------------------------------------
# State and outcome checks
# ------------------------------------------------------------------------------------------------

_TABLES = ("flows", "steps", "deps", "runs", "step_states", "tasks", "events", "channels",
           "task_graphs")


def state_hash(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Hash every workflow table and every pgmq table (row contents, in a fixed order)."""
    out: dict[str, str] = {}
    tables = [f"workflow.{t}" for t in _TABLES] + [
        f"pgmq.{r[0]}" for r in conn.execute(
            "select tablename from pg_tables where schemaname = 'pgmq' order by 1").fetchall()
    ]
    for table in tables:
        row = conn.execute(
            f"select count(*), md5(coalesce(string_agg(t::text, ',' order by t::text), ''))"  # noqa: S608
            f" from {table} t"
        ).fetchone()
        out[table] = f"{row[0]}:{row[1]}" if row else ""
    return out


#: Server-side input errors of a parameter (raised before the function runs), raw SQL only.
PARAMETER_ERRORS = frozenset({"22P05", "54001"})


def check(kind: str, conn: psycopg.Connection[Any], call: Callable[[], Any],
          raw_sql: bool = False) -> str:
    """Run ``call``; on error require a documented one and an unchanged database.

    Returns "ok" or the error's code/type, for the statistics.
    """
    TRIED[kind] += 1
    before = state_hash(conn)
    try:
        call()
    except WorkflowError as exc:
        assert exc.code is not None and exc.code.startswith("WF"), f"{kind}: {exc!r}"
        outcome = exc.code
    except (TypeError, ValueError) as exc:
        assert not isinstance(exc, psycopg.Error), f"{kind}: {exc!r}"
        outcome = type(exc).__name__
    except psycopg.Error as exc:
        sqlstate = exc.sqlstate or ""
        documented = sqlstate.startswith("WF") or (raw_sql and sqlstate in PARAMETER_ERRORS)
        assert documented, f"{kind}: undocumented error {sqlstate}: {exc}"
        outcome = sqlstate
    else:
        return "ok"
    assert state_hash(conn) == before, f"{kind}: an error ({outcome}) changed the database"
    return outcome


def sql_check(kind: str, conn: psycopg.Connection[Any], query: str, params: list[Any]) -> str:
    """``check`` a raw SQL call of ``query`` on ``conn`` (the functions without the client)."""
    return check(kind, conn, lambda: conn.execute(query, params).fetchall(), raw_sql=True)


def as_jsonb(value: Any) -> Jsonb:
    """Wrap a value as jsonb the way a non-Python client might send it (NaN etc. refused here)."""
    json.dumps(value, allow_nan=False)
    return Jsonb(value)


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_db(db_url: str) -> Iterator[tuple[psycopg.Connection[Any], Client]]:
    """Give the module a database with a single-root flow, a root-map flow and one live run."""
    with psycopg.connect(db_url, autocommit=True) as conn, Client(db_url) as client:
        client.register_flow({"slug": "fz.single", "steps": [
            {"slug": "a", "execution": "distributed"},
            {"slug": "b", "execution": "distributed", "depends_on": ["a"]}]})
        client.register_flow({"slug": "fz.map", "steps": [
            {"slug": "each", "execution": "distributed", "type": "map"},
            {"slug": "all", "execution": "distributed", "depends_on": ["each"]}]})
        # Its own queue: other properties leave runs (some with inputs Python cannot decode,
        # see test_fuzz_deeply_nested_input_through_sql) on the default queue.
        client.register_flow({"slug": "fz.out", "steps": [
            {"slug": "o", "execution": "distributed", "queue": "fz_out"}]})
        client.start_flow("fz.single", {"x": 1})
        yield conn, client
    print("\nfuzz cases tried:", dict(TRIED), "total", sum(TRIED.values()))


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------


@FUZZ
@given(definition=flow_defs)
def test_fuzz_register_flow_in_sql_and_python(fuzz_db: Any, definition: Any) -> None:
    conn, client = fuzz_db
    try:
        body = as_jsonb(definition)
    except ValueError:
        body = None
    if body is not None:
        sql_check("register_flow (sql)", conn, "select workflow.register_flow(%s)", [body])
    if isinstance(definition, dict):
        check("register_flow (python)", conn, lambda: client.register_flow(definition))


@FUZZ
@given(flow=st.one_of(st.sampled_from(["fz.single", "fz.map"]), plain), value=json_values,
       run_id=st.one_of(st.none(), st.uuids()))
def test_fuzz_start_flow_inputs(fuzz_db: Any, flow: str, value: Any, run_id: Any) -> None:
    conn, client = fuzz_db
    check("start_flow (python)", conn, lambda: client.start_flow(flow, value, run_id=run_id))
    try:
        body = as_jsonb(value)
    except ValueError:
        return
    sql_check("start_flow (sql)", conn, "select workflow.start_flow(%s, %s, %s)",
              [flow, body, run_id])


# to_jsonb (the client's serialiser) lets json's RecursionError through for values nested deeper
# than the interpreter's recursion limit, instead of the documented TypeError (reported).
@pytest.mark.parametrize("depth", [10, 100, 1000, 5000])
def test_fuzz_deeply_nested_input_through_python(fuzz_db: Any, depth: int) -> None:
    conn, client = fuzz_db
    value = deep(depth)
    check("deep input", conn, lambda: client.start_flow("fz.single", {"deep": value}))
    check("deep map input", conn, lambda: client.start_flow("fz.map", [value]))


@pytest.mark.parametrize("depth", [10, 100, 1000, 5000, 50_000])
def test_fuzz_deeply_nested_input_through_sql(fuzz_db: Any, depth: int) -> None:
    conn, _client = fuzz_db
    # Serialised by hand (json.dumps recurses): the server parses it, or refuses it with a
    # documented error and changes nothing. (Such a run's tasks cannot be claimed by a Python
    # worker today: psycopg's json.loads raises RecursionError past ~1,000 levels; reported.)
    text = '{"k": ' * depth + "1" + "}" * depth
    sql_check("deep input (sql)", conn, "select workflow.start_flow('fz.single', %s::jsonb)",
              [text])


@pytest.mark.parametrize("megabytes", [1, 16])
def test_fuzz_huge_input(fuzz_db: Any, megabytes: int) -> None:
    conn, client = fuzz_db
    big = {"blob": "é" * (megabytes * 2**20 // 2), "items": list(range(1000))}
    run_ids: list[Any] = []
    outcome = check("huge input", conn,
                    lambda: run_ids.append(client.start_flow("fz.single", big)))
    assert outcome == "ok"
    assert client.get_run_status(run_ids[0]).input == big
    # Out of the way, so the state hashes of the other properties stay cheap.
    client.cancel_workflow_run(run_ids[0])
    conn.execute("select workflow.prune('0 seconds', 10)")


@FUZZ
@given(output=json_values)
def test_fuzz_task_outputs(fuzz_db: Any, output: Any) -> None:
    conn, client = fuzz_db
    client.start_flow("fz.out", {"o": 1})
    tasks = client.claim_tasks("fz_out", 1, worker_id="fuzz")
    assert tasks, "a task to complete"
    task = tasks[0]
    outcome = check("complete output (python)", conn,
                    lambda: client.complete_tasks([(task.task_id, task.attempt, output)]))
    if outcome != "ok":
        # The same output sent as raw SQL: refused by the server or stored, never half-stored.
        try:
            body = as_jsonb(output)
        except ValueError:
            body = None
        if body is not None:
            sql_check("complete output (sql)", conn,
                      "select * from workflow.complete_tasks(%s, %s, %s::jsonb[])",
                      [[task.task_id], [task.attempt], [body]])
        client.complete_tasks([(task.task_id, task.attempt, None)])


@FUZZ
@given(error=texts, attempt=st.integers(-3, 5), task_id=st.integers(-(2**63), 2**63 - 1))
def test_fuzz_fail_and_stale_reports(fuzz_db: Any, error: str, attempt: int, task_id: int) -> None:
    conn, client = fuzz_db
    check("fail_tasks", conn, lambda: client.fail_tasks([(task_id, attempt, error)]))
    check("extend_leases", conn, lambda: client.extend_leases([(task_id, attempt)], 30))
    check("complete stale", conn, lambda: client.complete_tasks([(task_id, attempt, {"e": error})]))


@FUZZ
@given(channel=channels, message=json_values,
       payload=st.one_of(plain_texts, st.integers(0, 9000).map(lambda n: "x" * n)))
def test_fuzz_channels(fuzz_db: Any, channel: str, message: Any, payload: str) -> None:
    conn, client = fuzz_db
    check("send_with_notify", conn, lambda: client.send_with_notify(channel, message))
    check("notify_only", conn, lambda: client.notify_only(channel, payload))
    check("read_channel", conn, lambda: client.read_channel(channel))
    check("ack_message", conn, lambda: client.ack_message(channel, 1))


@FUZZ
@given(run_id=st.one_of(texts, st.uuids().map(str), st.uuids()))
def test_fuzz_run_ids(fuzz_db: Any, run_id: Any) -> None:
    conn, client = fuzz_db
    check("get_run_status", conn, lambda: client.get_run_status(run_id))
    check("cancel", conn, lambda: client.cancel_workflow_run(run_id))
    check("pause", conn, lambda: client.pause_workflow_run(run_id))
    check("resume", conn, lambda: client.resume_workflow_run(run_id))
    check("retry", conn, lambda: client.retry_failed_workflow(run_id))
    if isinstance(run_id, uuid.UUID):
        check("read_events run", conn, lambda: client.read_events(run_id=run_id))


ints = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 1000, 1001, -1]))


@FUZZ
@given(limit=ints, offset=ints, status=st.one_of(st.none(), plain_texts, st.sampled_from(
    ["started", "completed", "failed", "paused", "cancelled", "in_progress"])),
    column=st.one_of(plain_texts, st.sampled_from(["inserted_at", "flow_slug", "status"])),
    direction=st.one_of(plain_texts, st.sampled_from(["asc", "desc"])), qty=ints, queue=plain)
def test_fuzz_limits_offsets_and_orderings(fuzz_db: Any, limit: int, offset: int,
                                           status: Any, column: str, direction: str, qty: int,
                                           queue: str) -> None:
    conn, client = fuzz_db
    sql_check("list_workflow_runs", conn,
              "select * from workflow.list_workflow_runs(%s, null, %s, %s, %s, %s)",
              [status, limit, offset, column, direction])
    check("list_workflow_runs (python)", conn, lambda: client.list_workflow_runs(
        status, limit=limit, offset=offset, order_by=(direction, column)))  # type: ignore[arg-type]
    check("read_events", conn, lambda: client.read_events(limit=limit, after_id=offset))
    check("read_channel limit", conn, lambda: client.read_channel("fz_ch", limit=limit))
    # A claim or a prune that succeeds changes the database, as it should; a bad queue name,
    # qty, interval or batch size must be WF001/WF010 and change nothing.
    sql_check("claim_tasks qty", conn,
              "select count(*) from workflow.claim_tasks(%s, %s)", [queue, qty])
    sql_check("prune", conn,
              "select count(*) from workflow.prune(make_interval(secs => %s), %s)",
              [float(offset), limit])


def test_text_arguments_with_nul(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn, Client(db_url) as client:
        check("nul payload", conn, lambda: client.notify_only("fz_ch", "a\x00b"))
        check("nul slug", conn, lambda: client.start_flow("fz\x00single", {}))
        check("after", conn, lambda: client.list_workflow_runs())


@pytest.mark.parametrize("query, args", [
    pytest.param("select workflow.register_flow(%s::jsonb)",
                 ['{"slug": "big", "timeout": 2147483648, "steps": [{"slug": "a"}]}'],
                 id="flow timeout 2**31: WF010 (was 22003)"),
    pytest.param("select workflow.register_flow(%s::jsonb)",
                 ['{"slug": "q48", "steps": [{"slug": "a", "execution": "distributed", "queue": "'
                  + "q" * 48 + '"}]}'],
                 id="48-character queue: WF001 (was pgmq's P0001)"),
    pytest.param("select workflow.send_with_notify(%s, '1')", ["x" * 43],
                 id="43-character channel: WF001 (was pgmq's P0001)"),
])
def test_formerly_known_sql_bugs(fuzz_db: Any, query: str, args: list[Any]) -> None:
    conn, _client = fuzz_db
    sql_check("former bug", conn, query, args)


def test_fuzz_nan_and_nul_are_refused_before_sql(fuzz_db: Any) -> None:
    conn, client = fuzz_db
    for bad in (math.nan, math.inf, "a\x00b", {"k\x00": 1}, [1, {"x": "\x00"}]):
        assert check("refused value", conn, lambda bad=bad: client.start_flow(
            "fz.single", {"v": bad})) == "TypeError"
