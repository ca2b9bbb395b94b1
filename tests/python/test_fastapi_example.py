"""examples/fastapi_app.py: starts runs and streams their events through the async client.

Driven through httpx (Starlette's TestClient, which runs the app's lifespan on its own event
loop, as a server would), with a worker thread serving the example's queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from singularity_workflow import Client, Worker
from tests.fixtures import import_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"


@pytest.fixture
def example(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    yield import_file(EXAMPLE)


@pytest.fixture
def worker(db_url: str, example: ModuleType) -> Iterator[Worker]:
    with Client(db_url) as client:
        w = Worker(client, ["api"], poll_interval=0.5)
        w.run_in_thread()
        try:
            yield w
        finally:
            w.stop()
            w.join(10)


def test_the_app_starts_a_run_and_streams_its_events_to_the_end(
    example: ModuleType, worker: Worker
) -> None:
    with TestClient(example.app) as http:
        started = http.post("/orders", json={"items": [2, 3]})
        assert started.status_code == 200
        run_id = started.json()["run_id"]
        events = []
        with http.stream("GET", f"/runs/{run_id}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
        names = [e["event"] for e in events]
        assert names[0] == "run_started"
        assert names[-1] == "run_completed"
        assert len({e["id"] for e in events}) == len(events)  # each event once
        status = http.get(f"/runs/{run_id}").json()
    assert status == {"state": "completed", "percentage": 100.0, "output": {"total": {"total": 50}}}


def test_a_run_that_already_ended_streams_its_history_and_stops(
    example: ModuleType, worker: Worker
) -> None:
    with TestClient(example.app) as http:
        run_id = http.post("/orders", json={"items": []}).json()["run_id"]
        with http.stream("GET", f"/runs/{run_id}/events") as stream:
            body = stream.read().decode()
    assert '"run_completed"' in body
