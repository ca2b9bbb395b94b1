"""Operations are data: the same object runs on a sync connection and on an async one.

Each client call is an ``_db.Operation`` (SQL, parameters, decoding) built once in
``_operations``; ``Client`` executes it with ``_db.execute``. An async client would execute the
very same objects with ``_db.execute_async``; this shows that works, decoding and error mapping
included, without a second definition of the call.
"""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from singularity_workflow import Client, RunNotFound, RunStatus
from singularity_workflow._db import Operation, execute_async, no_result
from singularity_workflow._operations import definitions, runs, tasks

FLOW = {
    "slug": "tests.operations",
    "steps": [{"slug": "only", "execution": "distributed", "queue": "q_operations"}],
}


def test_one_operation_object_runs_on_a_sync_and_an_async_connection(db_url: str) -> None:
    client = Client(db_url)
    client.register_flow(FLOW)
    run_id = client.start_flow("tests.operations", {"n": 1})
    status_op = runs.get_run_status(run_id)

    async def run_async() -> tuple[RunStatus, list[str]]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
            status = await execute_async(aconn, status_op)
            claimed = await execute_async(aconn, tasks.claim_tasks("q_operations", 5))
            return status, [t.step_slug for t in claimed]

    from_async, claimed = asyncio.run(run_async())
    from_sync = client.call(status_op)  # the same object, executed again, synchronously
    assert isinstance(from_async, RunStatus) and from_async.run_id == run_id
    assert (from_async.status, from_async.total_steps) == ("in_progress", 1)
    assert (from_sync.run_id, from_sync.status) == (run_id, "in_progress")
    assert claimed == ["only"]
    client.close()


def test_async_execution_maps_wf_errors_like_the_client(db_url: str) -> None:
    async def unknown_run() -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
            await execute_async(aconn, runs.get_run_status(uuid.uuid4()))

    with pytest.raises(RunNotFound) as caught:
        asyncio.run(unknown_run())
    assert caught.value.code == "WF011"


@pytest.mark.unit
def test_building_an_operation_checks_its_arguments_before_any_io() -> None:
    # No database anywhere: bad values fail while the operation is built.
    with pytest.raises(TypeError, match="run input is not JSON-serialisable"):
        runs.start_flow("f", {"x": object()})
    with pytest.raises(ValueError):
        runs.get_run_status("not a uuid")
    op = definitions.get_flow("orders")
    assert (op.query, list(op.params)) == ("select workflow.get_flow(%s, %s)", ["orders", None])
    assert Operation("select 1", [], no_result).decode([(1,)]) is None
