"""A FastAPI app that starts workflow runs and streams their events, on the async client.

Run it (and a worker for its queue, in another terminal)::

    pip install fastapi uvicorn
    DATABASE_URL=postgresql://... uvicorn examples.fastapi_app:app
    DATABASE_URL=postgresql://... singularity-workflow worker -i examples.fastapi_app --queue api

Then ``curl -X POST localhost:8000/orders -d '{"items": [2, 3]}' -H 'content-type:
application/json'`` returns a run id, ``curl -N localhost:8000/runs/<id>/events`` streams the
run's events as server-sent events until it ends, and ``GET /runs/<id>`` is its status.

One ``AsyncClient`` over an ``AsyncConnectionPool`` serves every request of the app's event
loop; nothing blocks the loop (no thread per call).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from singularity_workflow import AsyncClient, Workflow, start_flow_async, step


class Order(Workflow):
    """Price each item (a map step), then total them: both on the workers of queue ``api``."""

    slug = "example_fastapi_order"

    @step(execution="distributed", queue="api", map=True)
    def price(self, item: int) -> int:
        """Price one item: 10 per unit."""
        return 10 * item

    @step(depends_on=["price"], execution="distributed", queue="api")
    def total(self, input: dict[str, Any]) -> dict[str, int]:
        """Add the prices up."""
        return {"total": sum(input["price"])}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool and the client for the app's lifetime; register the workflow once."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        os.environ["DATABASE_URL"], open=False, kwargs={"autocommit": True}
    )
    await pool.open()
    client = AsyncClient(pool)
    await client.register_flow(Order)
    app.state.client = client
    try:
        yield
    finally:
        await client.close()
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/orders")
async def create_order(request: Request) -> dict[str, str]:
    """Start a run over the posted items; return its id at once (the workers run it)."""
    body = await request.json()
    client: AsyncClient = request.app.state.client
    run_id = await start_flow_async(Order.slug or "", body["items"], client=client)
    return {"run_id": str(run_id)}


@app.get("/runs/{run_id}")
async def run_status(run_id: UUID, request: Request) -> dict[str, Any]:
    """Return the run's status: state, progress and output."""
    status = await request.app.state.client.get_run_status(run_id)
    return {"state": status.state, "percentage": status.percentage, "output": status.output}


@app.get("/runs/{run_id}/events")
async def run_events(run_id: UUID, request: Request) -> StreamingResponse:
    """Stream the run's events (server-sent events) until it ends."""
    events = _events(request.app.state.client, run_id)
    return StreamingResponse(events, media_type="text/event-stream")


async def _events(client: AsyncClient, run_id: UUID) -> AsyncIterator[str]:
    """Yield each event of the run once, woken by the run's notification, until it ends.

    LISTEN comes first, then the status, then the events: an end that commits after the
    status read is both notified and read on the next round, so nothing is missed.
    """
    listener = await client.connect_dedicated()
    try:
        channel = sql.Identifier(f"workflow_run_{run_id}")
        await listener.execute(sql.SQL("listen {}").format(channel))
        after = 0
        while True:
            ended = (await client.get_run_status(run_id)).status != "in_progress"
            for event in await client.read_events(after, run_id):
                after = event.event_id
                data = {"event": event.event, "step": event.step_slug, "id": event.event_id}
                yield f"data: {json.dumps(data)}\n\n"
            if ended:
                return
            async for _ in listener.notifies(timeout=1.0, stop_after=1):
                pass
    finally:
        await listener.close()
