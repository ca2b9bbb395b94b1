"""A completion that races a cancel is counted where its task row says it completed.

The cancel's sweep skips a task that a completer holds locked (``FOR NO KEY UPDATE SKIP
LOCKED``, so a cancel never waits on a worker), and that completer then commits the task as
``completed``. Its step was already failed by the cancel; the step's task counter must still
count the task, or ``get_run_status`` reports fewer completed tasks than the task rows hold
(seen as a flaky ``test_cancel_while_four_workers_are_busy``). Two real connections make the
interleaving exact instead of waiting for the race.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

FLOW = {
    "slug": "race_cancel",
    "steps": [
        {"slug": "items", "execution": "distributed", "queue": "race_q"},
        {
            "slug": "work",
            "depends_on": ["items"],
            "type": "map",
            "execution": "distributed",
            "queue": "race_q",
        },
    ],
}


def _one(conn: psycopg.Connection[Any], sql: str, *args: Any) -> Any:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def test_a_completion_that_races_a_cancel_is_counted_on_its_step(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as setup:
        setup.execute("select workflow.register_flow(%s::jsonb)", (json.dumps(FLOW),))
        run_id = _one(setup, "select workflow.start_flow('race_cancel', '{}'::jsonb)")
        first = setup.execute(
            "select task_id, attempt from workflow.claim_tasks('race_q', 1)"
        ).fetchone()
        assert first is not None
        setup.execute(
            "select workflow.complete_tasks(array[%s]::bigint[], array[%s],"
            " array['[1,2,3]'::jsonb])",
            (first[0], first[1]),
        )
        claimed = setup.execute(
            "select task_id, attempt from workflow.claim_tasks('race_q', 3) order by task_id"
        ).fetchall()
        assert len(claimed) == 3

    racer_id, racer_attempt = claimed[0]
    with (
        psycopg.connect(db_url) as completer,
        psycopg.connect(db_url, autocommit=True) as canceller,
    ):
        # The completer holds its task's row as complete_tasks' first phase does...
        completer.execute(
            "select 1 from workflow.tasks where task_id = %s for no key update", (racer_id,)
        )
        # ...the cancel commits meanwhile, its sweep passing over the locked task...
        canceller.execute("select workflow.cancel_workflow_run(%s, 'operator stop')", (run_id,))
        # ...and the completer's completion is then accepted and committed.
        accepted = _one(
            completer,
            "select accepted from workflow.complete_tasks(array[%s]::bigint[], array[%s],"
            " array['10'::jsonb])",
            racer_id,
            racer_attempt,
        )
        completer.commit()
        assert accepted is True

        rows = canceller.execute(
            "select status, count(*) from workflow.tasks where run_id = %s and step_slug = 'work'"
            " group by status",
            (run_id,),
        ).fetchall()
        assert dict(rows) == {"completed": 1, "failed": 2}
        status = _one(canceller, "select workflow.get_run_status(%s)", run_id)
        work = next(s for s in status["steps"] if s["step"] == "work")
        assert (status["state"], work["status"]) == ("cancelled", "failed")
        assert work["tasks_completed"] == 1
        # Nothing of the run is left claimable.
        left = _one(
            canceller,
            "select count(*) from pgmq.q_race_q where (message ->> 'run_id')::uuid = %s",
            run_id,
        )
        assert left == 0
