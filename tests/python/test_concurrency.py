"""Concurrency and crash proofs of the SQL core, over real connections and real processes.

A single pgTAP transaction cannot show that a join step is enqueued exactly once when its ten
dependencies complete from different connections at the same moment, nor that a worker killed
with SIGKILL loses nothing. These tests do it for real: 8 drivers (threads, each with its own
connection and so its own backend; see ``_drive.py``) claim and report in batches of 50, and the
crash tests kill a child process that holds a claim. Every assertion is then made on the tables,
not on what the drivers believe. Any deadlock (SQLSTATE 40P01) fails a test: the functions take
their locks in one documented order, so a deadlock would be a bug in that order.

Each test uses its own flow and queue, so their rows never mix although they share the module's
database.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from multiprocessing.connection import Connection as Pipe
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.python._drive import DriverStats, Outcome, Task, claim, complete, drive, errors_of, fail

DRIVERS = 8
BATCH = 50
WIDTH = 10  # b1..b10 in the diamond


def register(conn: psycopg.Connection[Any], definition: dict[str, Any]) -> None:
    """Register a flow from its JSON definition."""
    conn.execute("select workflow.register_flow(%s)", [Jsonb(definition)])


def start_runs(conn: psycopg.Connection[Any], flow: str, inputs: Sequence[Any]) -> list[str]:
    """Start one run per input in a single statement; return the run ids in input order."""
    rows = conn.execute(
        "select workflow.start_flow(%s, i) from unnest(%s::jsonb[]) with ordinality as x (i, n)"
        " order by n",
        [flow, [Jsonb(i) for i in inputs]],
    ).fetchall()
    return [str(r[0]) for r in rows]


def scalar(conn: psycopg.Connection[Any], query: str, params: Sequence[Any] = ()) -> Any:
    """Return the first column of the first row of ``query``."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def run_status(conn: psycopg.Connection[Any], run_id: str) -> str:
    """Return the status of run ``run_id``."""
    return str(scalar(conn, "select status from workflow.runs where run_id = %s", [run_id]))


def live_messages(conn: psycopg.Connection[Any], queue: str) -> int:
    """Return how many messages (visible or leased) queue ``queue`` still holds."""
    query = sql.SQL("select count(*) from pgmq.{}").format(sql.Identifier(f"q_{queue}"))
    return int(scalar(conn, query.as_string(conn)))


def live_tasks(conn: psycopg.Connection[Any], flow: str) -> int:
    """Return how many tasks of ``flow``'s runs are still queued or started."""
    return int(scalar(
        conn,
        "select count(*) from workflow.tasks t join workflow.runs r using (run_id)"
        " where r.flow_slug = %s and t.status in ('queued', 'started')",
        [flow],
    ))


def assert_no_errors(results: Sequence[DriverStats]) -> None:
    """Fail with the first recorded database error, naming a deadlock as such."""
    errors = errors_of(results)
    if errors and errors[0][0] == "40P01":
        pytest.fail(
            f"deadlock between drivers (the lock order is not deadlock-free): {errors[0][1]}"
        )
    assert errors == [], errors


# --- 1. diamonds: a join is enqueued exactly once, a completion is counted once ------------------

DIAMOND = {
    "slug": "diamond",
    "steps": [
        {"slug": "a", "execution": "distributed"},
        *({"slug": f"b{i}", "execution": "distributed", "depends_on": ["a"]}
          for i in range(1, WIDTH + 1)),
        {"slug": "join", "execution": "distributed",
         "depends_on": [f"b{i}" for i in range(1, WIDTH + 1)]},
    ],
}


def diamond_handler(task: Task) -> Outcome:
    """Compute each step's output from the input the claim assembled, so wrong inputs show.

    a -> {"n": run.n}; b<i> -> {"n": a.n * i}; join -> {"sum": sum of the b's} = 55 * n. The join
    also checks that its input holds exactly the run and its ten dependencies.
    """
    step, inp = task["step_slug"], task["input"]
    if step == "a":
        return "ok", {"n": inp["run"]["n"]}
    if step.startswith("b"):
        return "ok", {"n": inp["a"]["n"] * int(step[1:])}
    expected_keys = {"run", *(f"b{i}" for i in range(1, WIDTH + 1))}
    if set(inp) != expected_keys:
        return "ok", {"sum": None, "bad_keys": sorted(inp)}
    return "ok", {"sum": sum(inp[f"b{i}"]["n"] for i in range(1, WIDTH + 1))}


def test_a_thousand_diamonds_from_eight_connections_enqueue_each_join_once(db_url: str) -> None:
    runs = 1000
    with psycopg.connect(db_url, autocommit=True) as conn:
        register(conn, DIAMOND)
        run_ids = start_runs(conn, "diamond", [{"n": n} for n in range(runs)])

    started = time.monotonic()
    results = drive(db_url, "default", ["diamond"], diamond_handler, drivers=DRIVERS, batch=BATCH)
    elapsed = time.monotonic() - started
    assert_no_errors(results)

    steps = WIDTH + 2
    with psycopg.connect(db_url, autocommit=True) as conn:
        statuses = dict(conn.execute(
            "select status, count(*) from workflow.runs where flow_slug = 'diamond' group by status"
        ).fetchall())
        assert statuses == {"completed": runs}, f"after {elapsed:.1f} s: {statuses}"

        # Invariant 1 (docs/architecture.md, "Invariants"): exactly one join task per run, and
        # the join step was sized once.
        join_tasks = Counter(r[0] for r in conn.execute(
            "select run_id from workflow.tasks"
            " where step_slug = 'join' and run_id = any(%s::uuid[])",
            [run_ids],
        ).fetchall())
        assert len(join_tasks) == runs and set(join_tasks.values()) == {1}
        assert scalar(
            conn,
            "select count(*) from workflow.step_states where step_slug = 'join'"
            " and run_id = any(%s::uuid[]) and initial_tasks = 1 and status = 'completed'",
            [run_ids],
        ) == runs
        assert scalar(
            conn,
            "select count(*) from (select run_id, step_slug from workflow.tasks"
            " where run_id = any(%s::uuid[]) group by 1, 2 having count(*) <> 1) x",
            [run_ids],
        ) == 0

        # Invariant 2: every task completed once, on its first and only attempt.
        task_rows = scalar(
            conn, "select count(*) from workflow.tasks where run_id = any(%s::uuid[])", [run_ids]
        )
        assert task_rows == runs * steps
        accepted = sum(r.accepted for r in results)
        accepted_ids = [i for r in results for i in r.accepted_ids]
        assert accepted == task_rows and len(set(accepted_ids)) == task_rows
        assert sum(r.rejected for r in results) == 0
        assert sum(r.claimed for r in results) == task_rows
        attempts = dict(conn.execute(
            "select attempts_count, count(*) from workflow.tasks"
            " where run_id = any(%s::uuid[]) and status = 'completed' group by 1",
            [run_ids],
        ).fetchall())
        assert attempts == {1: task_rows}

        # Invariant 4: nothing left behind.
        assert live_messages(conn, "default") == 0
        assert live_tasks(conn, "diamond") == 0

        # Outputs: each run's output is its join's, computed from its own input.
        wrong = conn.execute(
            "select run_id, input, output from workflow.runs where flow_slug = 'diamond'"
            " and output is distinct from jsonb_build_object('join',"
            " jsonb_build_object('sum', (input ->> 'n')::int * 55)) limit 3"
        ).fetchall()
        assert wrong == []
    assert elapsed < 60, f"the drive took {elapsed:.1f} s; mark the test slow or find out why"


# --- 2. a worker killed while holding a claim ----------------------------------------------------

CHILD_APP = "sw-test-crashing-worker"


def claim_then_hang(url: str, queue: str, pipe: Pipe) -> None:
    """In a child process: claim one task, report it to the parent, then wait to be killed."""
    with psycopg.connect(url, autocommit=True, application_name=CHILD_APP) as conn:
        tasks = claim(conn, queue, 1, worker_id="doomed")
        pipe.send([(t["task_id"], t["attempt"], str(t["run_id"])) for t in tasks])
        time.sleep(120)


def claim_in_killed_child(url: str, queue: str) -> tuple[int, int, str]:
    """Have a child process claim one task of ``queue`` and SIGKILL it while it holds the claim.

    Returns (task_id, attempt, run_id) of the claim, once the child's backend has gone from
    pg_stat_activity (the server has seen the connection die).
    """
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=claim_then_hang, args=(url, queue, child_end))
    child.start()
    try:
        assert parent_end.poll(30), "the child did not claim in time"
        claimed = parent_end.recv()
    finally:
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    assert child.exitcode == -signal.SIGKILL
    assert len(claimed) == 1, claimed
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(200):
            if not scalar(
                conn,
                "select count(*) from pg_stat_activity where application_name = %s",
                [CHILD_APP],
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the killed child's backend is still connected")
    task_id, attempt, run_id = claimed[0]
    return int(task_id), int(attempt), run_id


def test_a_claim_whose_worker_is_killed_is_redelivered_after_its_lease_and_completed_once(
    db_url: str,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        register(conn, {"slug": "crashy", "steps": [
            {"slug": "only", "execution": "distributed", "queue": "crash", "timeout": 1,
             "max_attempts": 3},
        ]})
        (run_id,) = start_runs(conn, "crashy", [{"n": 7}])

    task_id, attempt, claimed_run = claim_in_killed_child(db_url, "crash")
    assert (attempt, claimed_run) == (1, run_id)

    with psycopg.connect(db_url, autocommit=True) as worker, \
            psycopg.connect(db_url, autocommit=True) as late:
        # The lease (1 s from the claim) still holds: nobody else gets the task yet.
        lease = scalar(worker, "select vt from pgmq.q_crash")
        assert claim(worker, "crash", 10, now=lease - timedelta(seconds=0.5)) == []
        # Past the lease the message is visible again and the next claim is attempt 2.
        again = claim(worker, "crash", 10, now=lease + timedelta(seconds=0.2), worker_id="rescuer")
        assert [(t["task_id"], t["attempt"]) for t in again] == [(task_id, 2)]

        # The dead attempt's reports, from another connection, are ignored...
        assert complete(late, [(task_id, 1, {"from": "attempt 1"})]) == {task_id: False}
        assert fail(late, [(task_id, 1, "late failure")]) == {task_id: "stale"}
        # ...the live one is accepted once, and a repeat of it is ignored too.
        assert complete(worker, [(task_id, 2, {"from": "attempt 2"})]) == {task_id: True}
        assert complete(late, [(task_id, 2, {"from": "again"})]) == {task_id: False}

        row = worker.execute(
            "select status, attempts_count, output, worker_id from workflow.tasks"
            " where task_id = %s",
            [task_id],
        ).fetchone()
        assert row == ("completed", 2, {"from": "attempt 2"}, "rescuer")
        run = worker.execute(
            "select status, output from workflow.runs where run_id = %s", [run_id]
        ).fetchone()
        assert run == ("completed", {"only": {"from": "attempt 2"}})
        assert live_messages(worker, "crash") == 0


def test_a_worker_killed_on_the_last_attempt_fails_the_run_at_the_next_claim(
    db_url: str,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        register(conn, {"slug": "crashy_once", "steps": [
            {"slug": "only", "execution": "distributed", "queue": "crash_once", "timeout": 1,
             "max_attempts": 1},
            {"slug": "after", "execution": "distributed", "depends_on": ["only"],
             "queue": "crash_once"},
        ]})
        (run_id,) = start_runs(conn, "crashy_once", [{}])

    task_id, attempt, _ = claim_in_killed_child(db_url, "crash_once")
    assert attempt == 1

    with psycopg.connect(db_url, autocommit=True) as conn:
        lease = scalar(conn, "select vt from pgmq.q_crash_once")
        assert claim(conn, "crash_once", 10, now=lease + timedelta(seconds=0.2)) == []
        run = conn.execute(
            "select status, failed_step, error_message from workflow.runs where run_id = %s",
            [run_id],
        ).fetchone()
        assert run is not None and run[:2] == ("failed", "only") and "lease expired" in run[2]
        assert scalar(
            conn, "select status from workflow.tasks where task_id = %s", [task_id]
        ) == "failed"
        assert live_messages(conn, "crash_once") == 0
        assert live_tasks(conn, "crashy_once") == 0
        # A completion from the dead worker, arriving after all that, changes nothing.
        assert complete(conn, [(task_id, 1, {})]) == {task_id: False}
        assert run_status(conn, run_id) == "failed"


# --- 3. concurrent final failures ---------------------------------------------------------------

def always_fail(task: Task) -> Outcome:
    """Fail every task."""
    return "fail", f"boom at element {task['item']}"


def test_concurrent_final_failures_fail_every_run_and_leave_nothing_behind(db_url: str) -> None:
    runs, width = 200, 20
    with psycopg.connect(db_url, autocommit=True) as conn:
        register(conn, {"slug": "all_fail", "steps": [
            {"slug": "items", "execution": "distributed", "type": "map", "queue": "fails",
             "max_attempts": 1},
            {"slug": "after", "execution": "distributed", "depends_on": ["items"],
             "queue": "fails"},
        ]})
        run_ids = start_runs(conn, "all_fail", [list(range(width))] * runs)
        assert scalar(conn, "select count(*) from pgmq.q_fails") == runs * width

    results = drive(db_url, "fails", ["all_fail"], always_fail, drivers=DRIVERS, batch=BATCH)
    assert_no_errors(results)

    outcomes = sum((r.fail_outcomes for r in results), Counter())
    assert set(outcomes) <= {"failed", "stale"}, outcomes
    # At least the first failure of each run is final.
    assert outcomes["failed"] >= runs
    with psycopg.connect(db_url, autocommit=True) as conn:
        runs_by = conn.execute(
            "select status, failed_step, count(*) from workflow.runs where run_id = any(%s::uuid[])"
            " group by 1, 2",
            [run_ids],
        ).fetchall()
        assert runs_by == [("failed", "items", runs)]
        leftovers = (live_messages(conn, "fails"), live_tasks(conn, "all_fail"))
        assert leftovers == (0, 0), (
            f"failed runs left {leftovers[0]} messages and {leftovers[1]} queued/started tasks"
            " (invariant 4); see the deterministic test below"
        )
        tasks_by = dict(conn.execute(
            "select status, count(*) from workflow.tasks where run_id = any(%s::uuid[]) group by 1",
            [run_ids],
        ).fetchall())
        assert tasks_by == {"failed": runs * width}, tasks_by
        # Nothing after the failed map ever started.
        assert scalar(
            conn,
            "select count(*) from workflow.step_states where run_id = any(%s::uuid[])"
            " and step_slug = 'after' and status <> 'created'",
            [run_ids],
        ) == 0
        assert scalar(
            conn,
            "select count(*) from workflow.step_states where run_id = any(%s::uuid[])"
            " and step_slug = 'items' and status = 'failed'",
            [run_ids],
        ) == runs


def test_a_claim_passing_over_a_run_being_failed_does_not_hide_its_tasks_from_the_sweep(
    db_url: str,
) -> None:
    """The interleaving behind leftovers in the test above, made deterministic.

    F fails the last attempt of task 0 of a 2-element map. It holds the run FOR UPDATE and is
    stopped, before its sweep, by a third session holding task 0's queue message (F deletes that
    message before it calls _fail_runs). Meanwhile C claims and passes over the run (SKIP LOCKED).
    F's sweep must still fail task 1 and delete its message once C has committed.
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        register(conn, {"slug": "swept", "steps": [
            {"slug": "items", "execution": "distributed", "type": "map", "queue": "swept",
             "max_attempts": 1},
        ]})
        (run_id,) = start_runs(conn, "swept", [[0, 1]])
        (task0,) = claim(conn, "swept", 1)
        message0 = scalar(
            conn, "select message_id from workflow.tasks where task_id = %s", [task0["task_id"]]
        )

    with psycopg.connect(db_url, autocommit=True) as watcher, psycopg.connect(db_url) as holder, \
            psycopg.connect(db_url, autocommit=True) as failer, psycopg.connect(db_url) as claimer:
        holder.execute("select 1 from pgmq.q_swept where msg_id = %s for update", [message0])
        verdict: dict[int, str] = {}
        thread = threading.Thread(
            target=lambda: verdict.update(fail(failer, [(task0["task_id"], 1, "boom")])),
            daemon=True,
        )
        thread.start()
        pid = failer.info.backend_pid
        for _ in range(400):
            waiting = scalar(
                watcher,
                "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s",
                [pid],
            )
            if waiting:
                break
            time.sleep(0.01)
        else:
            pytest.fail("fail_tasks never waited on the held message")
        # F holds the run: this claim skips it and returns nothing.
        assert claim(claimer, "swept", 10) == []
        holder.commit()
        time.sleep(0.3)  # let F reach its sweep while C's transaction is still open
        claimer.commit()
        thread.join(30)
        assert verdict == {task0["task_id"]: "failed"}

        assert run_status(watcher, run_id) == "failed"
        tasks = watcher.execute(
            "select task_index, status from workflow.tasks where run_id = %s order by 1", [run_id]
        ).fetchall()
        assert tasks == [(0, "failed"), (1, "failed")], (
            "claim_tasks kept the task locks of a run it skipped, so _fail_runs' sweep"
            f" (SKIP LOCKED) passed over them and they stay queued forever: {tasks}"
        )
        assert live_messages(watcher, "swept") == 0


# --- 4. mixed: clean runs, flaky runs that retry and succeed, doomed runs -----------------------

MIXED = {
    "slug": "mixed",
    "steps": [
        {"slug": "s1", "execution": "distributed", "queue": "mixed", "max_attempts": 3,
         "base_delay": 0},
        {"slug": "s2", "execution": "distributed", "type": "map", "map_over": "s1",
         "depends_on": ["s1"], "queue": "mixed",
         "max_attempts": 3, "base_delay": 0},
        {"slug": "s3", "execution": "distributed", "depends_on": ["s2"], "queue": "mixed",
         "max_attempts": 3, "base_delay": 0},
    ],
}
MAP_WIDTH = 5


def mixed_handler(task: Task) -> Outcome:
    """Compute s1 -> [n .. n+4]; s2 (map) -> 2x; s3 -> their sum.

    Flaky runs fail every first attempt; doomed runs fail element 2 of s2 on every attempt.
    """
    run = task["input"]["run"]
    kind, step = run["kind"], task["step_slug"]
    if kind == "flaky" and task["attempt"] == 1:
        return "fail", f"flaky first attempt of {step}"
    if kind == "doomed" and step == "s2" and task["task_index"] == 2:
        return "fail", "doomed element"
    if step == "s1":
        return "ok", [run["n"] + i for i in range(MAP_WIDTH)]
    if step == "s2":
        return "ok", task["item"] * 2
    return "ok", sum(task["input"]["s2"])


def test_mixed_retries_successes_and_failures_all_end_correctly(db_url: str) -> None:
    kinds = ["clean", "flaky", "doomed"]
    inputs = [{"n": n, "kind": kinds[n % 3]} for n in range(300)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        register(conn, MIXED)
        run_ids = start_runs(conn, "mixed", inputs)

    results = drive(db_url, "mixed", ["mixed"], mixed_handler, drivers=DRIVERS, batch=BATCH)
    assert_no_errors(results)

    with psycopg.connect(db_url, autocommit=True) as conn:
        by_run = {str(r[0]): r[1:] for r in conn.execute(
            "select run_id, status, failed_step, output from workflow.runs"
            " where run_id = any(%s::uuid[])",
            [run_ids],
        ).fetchall()}
        for run_id, inp in zip(run_ids, inputs, strict=True):
            status, failed_step, output = by_run[run_id]
            if inp["kind"] == "doomed":
                assert (status, failed_step) == ("failed", "s2"), (inp, by_run[run_id])
            else:
                expected = sum(2 * (inp["n"] + i) for i in range(MAP_WIDTH))
                assert (status, output) == ("completed", {"s3": expected}), (inp, by_run[run_id])

        # Attempts: clean tasks ran once, flaky ones twice; a doomed run's bad element used all 3.
        attempts = conn.execute(
            "select r.input ->> 'kind', t.step_slug, t.task_index, t.status, t.attempts_count,"
            " count(*) from workflow.tasks t join workflow.runs r using (run_id)"
            " where r.run_id = any(%s::uuid[]) group by 1, 2, 3, 4, 5",
            [run_ids],
        ).fetchall()
        for kind, step, index, status, count, _ in attempts:
            if kind == "clean":
                assert (status, count) == ("completed", 1), (kind, step, index)
            elif kind == "flaky":
                assert (status, count) == ("completed", 2), (kind, step, index)
            elif step == "s2" and index == 2:
                assert (status, count) == ("failed", 3), (kind, step, index)
            else:
                # s1 completed; s2's other elements completed, or were swept when the run failed.
                assert status in ("completed", "failed") and count <= 1, (kind, step, index, status)
        assert not any(kind == "doomed" and step == "s3" for kind, step, *_ in attempts)

        completed_tasks = scalar(
            conn,
            "select count(*) from workflow.tasks"
            " where run_id = any(%s::uuid[]) and status = 'completed'",
            [run_ids],
        )
        assert sum(r.accepted for r in results) == completed_tasks
        assert live_messages(conn, "mixed") == 0
        assert live_tasks(conn, "mixed") == 0
