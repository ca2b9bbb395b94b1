"""The web dashboard over HTTP: every page and action, CSRF, token, read-only, escaping, live feed.

Pages and actions go through Starlette's TestClient against the module's database; runs are
moved along by hand (claim, complete, fail through the client), so nothing depends on a worker.
The live feed (SSE) is read from a real uvicorn server on a free loopback port, because a
stream that never ends cannot be read through the TestClient. The keyset paging is checked on
a million runs: its plan and its time at the far end of the table.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.applications import Starlette

with warnings.catch_warnings():
    # Starlette announces a move of its TestClient from httpx to httpx2; httpx still works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from singularity_workflow import Client
from singularity_workflow._db import Operation, no_result
from singularity_workflow.cli import main
from singularity_workflow.dashboard import UnsafeBind, check_bind, create_app, is_loopback
from singularity_workflow.dashboard import _queries as queries
from singularity_workflow.dashboard._dag import display_state, layout_flow

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")

SCRIPT = "<script>window.__pwned = 1</script>"
FLOW = {
    "slug": "dash_flow",
    "steps": [
        {"slug": "fetch", "execution": "distributed", "queue": "dash_q", "max_attempts": 1},
        {"slug": "each", "execution": "distributed", "depends_on": ["fetch"], "type": "map",
         "map_over": "fetch",
         "queue": "dash_q"},
        {"slug": "side", "execution": "distributed", "depends_on": ["fetch"], "queue": "dash_q"},
        {"slug": "join", "execution": "distributed", "depends_on": ["each", "side"],
         "queue": "dash_q"},
    ],
}
OTHER = {"slug": "dash_other", "steps": [{"slug": "only", "execution": "distributed",
                                          "queue": "dash_other"}]}
LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        c.register_flow(FLOW)
        c.register_flow(OTHER)
        yield c


@pytest.fixture
def web(db_url: str, client: Client) -> Iterator[TestClient]:
    """Yield a TestClient over a dashboard on the module's database (its own pool and listener)."""
    with TestClient(create_app(db_url), base_url=LOCAL) as tc:
        yield tc


def drain(client: Client, queue: str, output: Callable[[Any], Any] = lambda t: None) -> int:
    """Claim and complete everything claimable on ``queue`` (output from ``output(task)``)."""
    done = 0
    while tasks := client.claim_tasks(queue, 50, worker_id="test-worker"):
        client.complete_tasks([(t.task_id, t.attempt, output(t)) for t in tasks])
        done += len(tasks)
    return done


def csrf_of(page: str) -> str:
    """Return the CSRF token embedded in a page's action forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no action form"
    return found.group(1)


def form_shown(page: str) -> set[str]:
    """Return the actions whose form the run page shows (not ``hidden``)."""
    return set(re.findall(r'id="act-(\w+)" >', page))


def state_of(client: Client, run_id: UUID | str) -> str:
    return client.get_run_status(run_id).state


# ----- pages ------------------------------------------------------------------------------------


def test_root_redirects_to_the_runs_list(web: TestClient) -> None:
    response = web.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/runs"


def test_runs_list_shows_runs_counts_and_filters(web: TestClient, client: Client) -> None:
    running = client.start_flow("dash_other", {"n": 1})
    done = client.start_flow("dash_other", {"n": 2})
    drain(client, "dash_other")  # completes both
    running = client.start_flow("dash_other", {"n": 3})
    page = web.get("/runs").text
    assert f'data-run="{running}" data-state="running"' in page
    assert f'data-run="{done}" data-state="completed"' in page
    counts = dict(re.findall(r'data-count="(\w+)">\s*<span class="n">(\d+\+?)</span>', page))
    assert set(counts) == {"running", "paused", "completed", "failed", "cancelled"}
    assert int(counts["completed"]) >= 2 and int(counts["running"]) >= 1
    only_running = web.get("/runs", params={"state": "running"}).text
    assert str(running) in only_running and str(done) not in only_running
    other_flow = web.get("/runs", params={"flow": "dash_flow"}).text
    assert str(running) not in other_flow
    # Unknown filter values are ignored rather than reaching SQL.
    assert web.get("/runs", params={"state": "x'; drop table", "limit": "7"}).status_code == 200
    live = web.get("/runs/live", params={"state": "completed"}).text
    assert str(done) in live and "<html" not in live


def test_runs_list_pages_by_keyset_through_every_run_once(web: TestClient, client: Client) -> None:
    client.register_flow({"slug": "dash_paging", "steps": [
        {"slug": "s", "execution": "distributed", "queue": "dash_pg"}]})
    made = {str(client.start_flow("dash_paging", {"i": i})) for i in range(60)}
    seen: list[str] = []
    url: str | None = "/runs?flow=dash_paging&limit=25"
    pages = 0
    while url:
        page = web.get(url).text
        seen += re.findall(r'<tr data-run="([0-9a-f-]+)"', page)
        older = re.search(r'<a href="([^"]+)" id="page-older">', page)
        url = older.group(1).replace("&amp;", "&") if older else None
        pages += 1
    assert pages == 3 and len(seen) == 60 and set(seen) == made
    # Newer from the last page leads back through the same runs, newest first.
    last = web.get("/runs?flow=dash_paging&limit=25&before=" + _cursor(client, seen[49])).text
    newer = re.search(r'<a href="([^"]+)" id="page-newer">', last)
    assert newer is not None
    back = web.get(newer.group(1).replace("&amp;", "&")).text
    assert re.findall(r'<tr data-run="([0-9a-f-]+)"', back) == seen[25:50]


def _cursor(client: Client, run_id: str) -> str:
    """Return the paging cursor of a run (started_at~id), as the pages write it."""
    with client.connection() as conn:
        row = conn.execute(
            "select started_at from workflow.runs where run_id = %s", [run_id]
        ).fetchone()
    assert row is not None
    return f"{row[0].isoformat()}~{run_id}".replace("+", "%2B")


def test_run_page_draws_the_dag_with_states_tasks_and_viewers(
    web: TestClient, client: Client
) -> None:
    run_id = client.start_flow("dash_flow", {"who": "dag"})
    [fetch] = client.claim_tasks("dash_q", 1, worker_id="w-dag")
    client.complete_tasks([(fetch.task_id, fetch.attempt, [10, 20, 30])])
    tasks = client.claim_tasks("dash_q", 2, worker_id="w-dag", for_run_id=None)
    each = [t for t in tasks if t.step_slug == "each"][:1]
    client.complete_tasks([(t.task_id, t.attempt, t.item * 2) for t in each])
    page = web.get(f"/runs/{run_id}").text
    nodes = dict(
        re.findall(r'<g class="node state-\w+" data-step="(\w+)" data-state="(\w+)"', page)
    )
    assert nodes["fetch"] == "completed"
    assert nodes["each"] == "running" and nodes["join"] == "queued"
    # Four nodes, four dependency edges, in columns by depth: fetch | each, side | join.
    assert len(re.findall(r'<path class="edge"', page)) == 4
    assert "1/3 tasks" in page  # the map step's task count
    assert '"who": "dag"' in page.replace("&#34;", '"')  # the input viewer
    step = web.get(f"/runs/{run_id}/steps/each").text
    assert "w-dag" in step and "1/3 completed" in step
    snapshot = web.get(f"/runs/{run_id}/status.json").json()
    by_step = {s["step"]: s for s in snapshot["steps"]}
    assert by_step["each"]["tasks"] == "1/3" and by_step["fetch"]["state"] == "completed"
    assert snapshot["actions"] == {"pause": True, "resume": False, "cancel": True, "retry": False}
    client.cancel_workflow_run(run_id, "tidy up")


def test_unknown_run_and_step_are_404(web: TestClient) -> None:
    assert web.get("/runs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert web.get("/runs/not-a-uuid").status_code == 404
    assert web.get("/runs/00000000-0000-0000-0000-000000000000/status.json").status_code == 404
    assert web.get("/runs/00000000-0000-0000-0000-000000000000/steps/x").status_code == 404


def test_layout_places_steps_by_dependency_depth() -> None:
    layout = layout_flow([
        {"slug": "a", "depends_on": []},
        {"slug": "b", "depends_on": ["a"], "type": "map"},
        {"slug": "c", "depends_on": ["a"]},
        {"slug": "d", "depends_on": ["b", "c"]},
        {"slug": "e", "depends_on": []},
    ])
    column = {n.step: n.column for n in layout.nodes}
    assert column == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0}
    assert {(e.source, e.target) for e in layout.edges} == {
        ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    # Every edge points rightwards; no two nodes overlap.
    x = {n.step: n.x for n in layout.nodes}
    assert all(x[e.source] < x[e.target] for e in layout.edges)
    boxes = {(n.x, n.y) for n in layout.nodes}
    assert len(boxes) == 5
    assert display_state("created", "running") == "queued"
    assert display_state("started", "paused") == "running"
    assert display_state("created", "failed") == "skipped"
    assert display_state("completed", "cancelled") == "completed"


def test_queues_and_channels_pages(web: TestClient, client: Client) -> None:
    run_id = client.start_flow("dash_other", {"q": 1})
    client.claim_tasks("dash_other", 1, worker_id="w-claims")
    client.send_with_notify("dash_chat", {"text": "hello"})
    queues = web.get("/queues").text
    assert 'data-queue="dash_other"' in queues
    assert "wfch_" not in queues  # channel queues are on the channels page
    assert "dash_chat" in web.get("/channels").text
    channel = web.get("/channels/dash_chat").text
    assert "hello" in channel
    assert web.get("/channels/Bad-Name").status_code == 404
    assert web.get("/queues/live").status_code == 200
    client.cancel_workflow_run(run_id)


def test_the_queues_page_shows_each_limit_and_its_use(web: TestClient, client: Client) -> None:
    assert "No concurrency or rate limits" in web.get("/queues").text
    # A queue of its own, so that work other tests left on theirs does not matter.
    client.register_flow({"slug": "dash_lim", "steps": [
        {"slug": "only", "execution": "distributed", "queue": "dash_lim"}]})
    client.set_concurrency_limit("queue", "dash_lim", 3)
    run_id = client.start_flow("dash_lim", {"q": 2})
    assert len(client.claim_tasks("dash_lim", 1)) == 1
    page = web.get("/queues/live").text
    assert 'data-limit="concurrency:queue:dash_lim"' in page
    assert '<td class="num" data-field="in_use">1</td><td class="num">3</td>' in page
    client.remove_concurrency_limit("queue", "dash_lim")
    client.cancel_workflow_run(run_id)
def test_schedules_page_lists_schedules_with_next_and_last_runs(
    web: TestClient, client: Client
) -> None:
    assert "No schedules" in web.get("/schedules").text
    client.create_schedule("dash_nightly", "dash_other", "0 3 * * *", timezone="Europe/Berlin")
    client.create_schedule("dash_hourly", "dash_other", "@hourly", enabled=False)
    run_id = client.trigger_schedule("dash_nightly")
    client.cancel_workflow_run(run_id)
    page = web.get("/schedules").text
    assert "dash_nightly" in page and "Europe/Berlin" in page and "0 3 * * *" in page
    nightly = next(s for s in client.list_schedules() if s.schedule_name == "dash_nightly")
    assert nightly.next_fire_at is not None
    assert nightly.next_fire_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") in page
    assert 'href="/schedules" class="active"' in page
    client.delete_schedule("dash_nightly")
    client.delete_schedule("dash_hourly")


# ----- escaping ---------------------------------------------------------------------------------


def test_markup_in_inputs_outputs_errors_and_messages_is_shown_as_text(
    web: TestClient, client: Client
) -> None:
    run_id = client.start_flow("dash_flow", {"html": SCRIPT})
    [fetch] = client.claim_tasks("dash_q", 1, worker_id="<b>worker</b>")
    client.fail_tasks([(fetch.task_id, fetch.attempt, f"boom {SCRIPT}")])
    client.send_with_notify("dash_xss", {"html": SCRIPT})
    pages = {
        "run": web.get(f"/runs/{run_id}").text,
        "step": web.get(f"/runs/{run_id}/steps/fetch").text,
        "list": web.get("/runs").text,
        "channel": web.get("/channels/dash_xss").text,
        "queues": web.get("/queues").text,
    }
    for name, page in pages.items():
        assert "<script>window" not in page, f"raw markup on the {name} page"
        assert "<b>worker" not in page, name
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in pages["run"]
    assert "&lt;script&gt;" in pages["step"] and "&lt;b&gt;worker&lt;/b&gt;" in pages["step"]
    assert "&lt;script&gt;" in pages["channel"]
    # The live snapshot carries it as JSON data, which the page writes with textContent.
    snapshot = web.get(f"/runs/{run_id}/status.json").json()
    assert SCRIPT in snapshot["error"]


def test_every_response_carries_security_headers(web: TestClient) -> None:
    response = web.get("/runs")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert web.get("/static/dashboard.js").headers["content-security-policy"] == csp


# ----- actions ----------------------------------------------------------------------------------


def test_pause_resume_cancel_through_posts(web: TestClient, client: Client) -> None:
    run_id = client.start_flow("dash_other", {"act": 1})
    token = csrf_of(web.get(f"/runs/{run_id}").text)
    r = web.post(f"/runs/{run_id}/pause", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/runs/{run_id}?done=paused"
    assert state_of(client, run_id) == "paused"
    assert form_shown(web.get(f"/runs/{run_id}").text) == {"resume", "cancel"}
    r = web.post(f"/runs/{run_id}/resume", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and state_of(client, run_id) == "running"
    r = web.post(f"/runs/{run_id}/cancel", data={"csrf": token, "reason": "from the web"},
                 follow_redirects=False)
    assert r.status_code == 303
    status = client.get_run_status(run_id)
    assert status.state == "cancelled" and status.error == "from the web"
    # An action the run's state does not allow is refused with the engine's message.
    again = web.post(f"/runs/{run_id}/pause", data={"csrf": token})
    assert again.status_code == 409 and 'id="error-message"' in again.text


def test_retry_skip_completed_and_reset_all(web: TestClient, client: Client) -> None:
    run_id = client.start_flow("dash_flow", {"retry": 1})
    [fetch] = client.claim_tasks("dash_q", 1, worker_id="w-retry")
    client.fail_tasks([(fetch.task_id, fetch.attempt, "no luck")])  # max_attempts 1: run fails
    assert state_of(client, run_id) == "failed"
    page = web.get(f"/runs/{run_id}").text
    assert form_shown(page) == {"retry"}
    token = csrf_of(page)
    r = web.post(f"/runs/{run_id}/retry", data={"csrf": token, "mode": "skip_completed"},
                 follow_redirects=False)
    assert r.status_code == 303
    new = r.headers["location"].split("/")[2].split("?")[0]
    assert client.get_run_status(new).retry_of == run_id
    r = web.post(f"/runs/{run_id}/retry", data={"csrf": token, "mode": "reset_all"},
                 follow_redirects=False)
    newer = r.headers["location"].split("/")[2].split("?")[0]
    assert newer != new and client.get_run_status(newer).retry_of == run_id
    for rid in (new, newer):
        client.cancel_workflow_run(rid)
    # Retrying a run that has not failed is refused.
    assert web.post(f"/runs/{new}/pause", data={"csrf": token}).status_code == 409


def test_actions_need_the_csrf_token_and_the_same_origin(web: TestClient, client: Client) -> None:
    run_id = client.start_flow("dash_other", {"csrf": 1})
    token = csrf_of(web.get(f"/runs/{run_id}").text)
    assert web.post(f"/runs/{run_id}/pause").status_code == 403
    assert web.post(f"/runs/{run_id}/pause", data={"csrf": "forged"}).status_code == 403
    cross = web.post(f"/runs/{run_id}/pause", data={"csrf": token},
                     headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    assert web.get(f"/runs/{run_id}/pause").status_code == 405  # never a GET
    assert state_of(client, run_id) == "running"
    same = web.post(f"/runs/{run_id}/pause", data={"csrf": token},
                    headers={"origin": LOCAL}, follow_redirects=False)
    assert same.status_code == 303 and state_of(client, run_id) == "paused"
    client.cancel_workflow_run(run_id)


def test_read_only_mode_shows_no_actions_and_refuses_them(db_url: str, client: Client) -> None:
    run_id = client.start_flow("dash_other", {"ro": 1})
    app = create_app(db_url, check_bind("127.0.0.1", token=None, read_only=True))
    with TestClient(app, base_url=LOCAL) as web:
        page = web.get(f"/runs/{run_id}").text
        assert 'name="csrf"' not in page and "read-only" in page
        assert web.post(f"/runs/{run_id}/pause", data={"csrf": "x"}).status_code == 403
        # Defence in depth: the dashboard's own database sessions are read-only too.
        dashboard_client = app.state.dashboard.client
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            dashboard_client.pause_workflow_run(run_id)
    assert state_of(client, run_id) == "running"
    client.cancel_workflow_run(run_id)


# ----- token, host and bind checks --------------------------------------------------------------


def test_token_is_required_on_every_request(db_url: str, client: Client) -> None:
    app = create_app(db_url, check_bind("127.0.0.1", token="s3cret", read_only=False))
    with TestClient(app, base_url=LOCAL) as web:
        assert web.get("/runs").status_code == 401
        assert web.get("/static/dashboard.js").status_code == 401
        assert web.get("/live/runs").status_code == 401
        assert web.get("/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert web.get("/runs", headers={"authorization": "Bearer s3cret"}).status_code == 200
        r = web.get("/runs?state=running&token=s3cret", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/runs?state=running"
        assert "httponly" in r.headers["set-cookie"].lower()
        assert web.get("/runs").status_code == 200  # the cookie now carries it
        web.cookies.clear()
        assert web.get("/runs?token=s3cretX").status_code == 401


def test_host_header_must_be_loopback_when_bound_to_loopback(web: TestClient) -> None:
    assert web.get("/runs", headers={"host": "evil.example"}).status_code == 421
    assert web.get("/runs", headers={"host": "127.0.0.1:8080"}).status_code == 200


def test_bind_rules() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    with pytest.raises(UnsafeBind):
        check_bind("0.0.0.0", token=None, read_only=False)
    assert check_bind("0.0.0.0", token="t", read_only=False).allowed_hosts is None
    assert check_bind("0.0.0.0", token=None, read_only=True).read_only


def test_cli_refuses_a_public_bind_without_token(db_url: str) -> None:
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "dashboard", "--host", "0.0.0.0", "--port", "1"]
    )
    assert result.exit_code == 2
    assert "--token or --read-only" in result.output
    assert "dashboard" in CliRunner().invoke(main, ["--help"]).output


# ----- the live feed over a real server ---------------------------------------------------------


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    app.state.dashboard.hub.listening.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def read_sse(response: httpx.Response, until: Callable[[list[tuple[str, Any]]], bool],
             timeout: float) -> list[tuple[str, Any]]:
    """Collect (event, data) pairs from an SSE response until ``until(events)`` or timeout."""
    events: list[tuple[str, Any]] = []
    name = "message"
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            if until(events):
                break
        if time.monotonic() > deadline:
            break
    return events


def test_run_stream_sends_updates_as_steps_complete(db_url: str, client: Client) -> None:
    app = create_app(db_url)
    run_id = client.start_flow("dash_other", {"sse": 1})
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        with http.stream("GET", f"/live/runs/{run_id}") as response:
            assert response.headers["content-type"].startswith("text/event-stream")

            def finish_when_seen(events: list[tuple[str, Any]]) -> bool:
                if len(events) == 1:
                    threading.Timer(0.3, drain, [client, "dash_other"]).start()
                return events[-1][1].get("state") == "completed"

            events = read_sse(response, finish_when_seen, timeout=10)
    assert events[0][0] == "status" and events[0][1]["state"] == "running"
    assert events[-1][1]["state"] == "completed"
    assert events[-1][1]["steps"][0]["state"] == "completed"


def test_a_burst_of_events_is_coalesced(db_url: str, client: Client) -> None:
    """Three hundred runs finishing in 300 transactions wake a runs-list stream a few times."""
    app = create_app(db_url)
    for i in range(300):
        client.start_flow("dash_other", {"burst": i})
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        with http.stream("GET", "/live/runs") as response:
            started = time.monotonic()
            worker = threading.Thread(target=lambda: [
                drain_one(client, "dash_other") for _ in range(300)])

            def collect(events: list[tuple[str, Any]]) -> bool:
                if len(events) == 1:
                    worker.start()
                return not worker.is_alive() and len(events) > 1 and \
                    time.monotonic() - started > 2

            events = read_sse(response, collect, timeout=30)
            elapsed = time.monotonic() - started
            worker.join()
    hub = app.state.dashboard.hub
    changed = [e for e in events if e[0] == "changed"]
    assert hub.events_seen >= 600  # step_completed + run_completed per run
    assert 1 <= len(changed) <= elapsed / 1.0 + 2, (len(changed), elapsed)


def drain_one(client: Client, queue: str) -> None:
    """Claim and complete one task (its own transactions: one burst of events each)."""
    tasks = client.claim_tasks(queue, 1, worker_id="burst")
    client.complete_tasks([(t.task_id, t.attempt, None) for t in tasks])


def test_channel_stream_delivers_new_messages(db_url: str, client: Client) -> None:
    app = create_app(db_url)
    client.send_with_notify("dash_live", {"n": 0})
    last = client.last_message_id("dash_live")
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        with http.stream("GET", f"/live/channels/dash_live?after={last}") as response:
            threading.Timer(0.5, lambda: [client.send_with_notify("dash_live", {"n": i})
                                          for i in (1, 2, 3)]).start()
            events = read_sse(response, lambda ev: sum(len(d) for _, d in ev) >= 3, timeout=10)
    texts = [m["text"] for _, batch in events for m in batch]
    assert [json.loads(t)["n"] for t in texts] == [1, 2, 3]


# ----- a million runs ----------------------------------------------------------------------------


@pytest.mark.slow
def test_keyset_paging_stays_fast_on_a_million_runs(db_url: str, client: Client) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into workflow.runs (run_id, flow_slug, version_id, status, remaining_steps,"
            " input, started_at, completed_at)"
            " select gen_random_uuid(), case when i % 10 = 0 then 'dash_flow' else 'dash_other'"
            " end, (select f.current_version_id from workflow.flows f where f.flow_slug ="
            " case when i % 10 = 0 then 'dash_flow' else 'dash_other' end),"
            " case when i % 50 = 0 then 'started' else 'completed' end, 0, '{}',"
            " now() - make_interval(secs => i), case when i % 50 = 0 then null"
            " else now() - make_interval(secs => i) end"
            " from generate_series(1, 1000000) i"
        )
        conn.execute("analyze workflow.runs")
        oldest = conn.execute(
            "select started_at, run_id from workflow.runs order by started_at, run_id limit 1"
            " offset 60"
        ).fetchone()
        assert oldest is not None
    timings = {}
    for label, state, flow in (("all", None, None), ("completed", "completed", None),
                               ("flow", None, "dash_flow")):
        queries.runs(client, state, flow, limit=51, before=tuple(oldest))  # warm
        t0 = time.perf_counter()
        page = queries.runs(client, state, flow, limit=51, before=tuple(oldest))
        timings[label] = time.perf_counter() - t0
        assert page and all((r.started_at, r.run_id) < tuple(oldest) for r in page)
    # A page at the far end is an index range scan: milliseconds, where offset paging (or a
    # scan of the table) reads the million rows first.
    assert max(timings.values()) < 0.05, timings
    queries.run_counts(client)  # warm
    t0 = time.perf_counter()
    counts = queries.run_counts(client)
    elapsed = time.perf_counter() - t0
    assert counts["completed"] == 10_001 and counts["running"] == 10_001  # capped
    assert elapsed < 0.3, elapsed
    with TestClient(create_app(db_url), base_url=LOCAL) as web:
        t0 = time.perf_counter()
        assert web.get("/runs").status_code == 200
        assert time.perf_counter() - t0 < 1.0
        assert "10000+" in web.get("/runs").text


def test_channels_form_opens_a_channel(web: TestClient) -> None:
    r = web.get("/channels", params={"name": "dash_form"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/channels/dash_form"
    assert web.get("/channels", params={"name": "<x>"}).status_code == 404


# ----- workers and steps that wait for one ------------------------------------------------------


def _register(client: Client, worker_id: str, queues: list[str], host: str = "box") -> None:
    client.call(Operation(
        "select workflow.register_worker(worker_id => %s, host => %s, pid => 7, queues => %s,"
        " handlers => %s, version => '1.2.3')",
        [worker_id, host, queues, '{"dash_other": ["only"]}'], no_result))


def test_the_queues_page_lists_the_live_registered_workers(
    web: TestClient, client: Client
) -> None:
    _register(client, "w-live-dash", ["dash_other"], host="<b>host</b>")
    _register(client, "w-dead-dash", ["dash_other"])
    client.call(Operation("select workflow.deregister_worker('w-dead-dash')", [], no_result))
    # A worker that only claimed (never registered) is not a live worker.
    client.claim_tasks("dash_other", 1, worker_id="w-unregistered")
    try:
        for path in ("/queues", "/queues/live"):
            page = web.get(path).text
            assert 'data-worker="w-live-dash"' in page and "1.2.3" in page
            assert "w-dead-dash" not in page and "w-unregistered" not in page
            assert "&lt;b&gt;host&lt;/b&gt;" in page and "<b>host" not in page
    finally:
        client.call(Operation("select workflow.deregister_worker('w-live-dash')", [], no_result))
    assert "No live worker is registered" in web.get("/queues").text


def test_the_run_page_says_which_step_waits_for_a_worker(web: TestClient, client: Client) -> None:
    run_id = client.start_flow("dash_other", {"wait": 1})
    page = web.get(f"/runs/{run_id}").text
    assert "waiting for a worker that can run this step" in page
    snapshot = web.get(f"/runs/{run_id}/status.json").json()
    assert [s["waiting"] for s in snapshot["steps"]] == [
        "waiting for a worker that can run this step"
    ]
    _register(client, "w-serves-dash", ["dash_other"])
    try:
        snapshot = web.get(f"/runs/{run_id}/status.json").json()
        assert [s["waiting"] for s in snapshot["steps"]] == [""]
    finally:
        client.call(Operation("select workflow.deregister_worker('w-serves-dash')", [], no_result))
        client.cancel_workflow_run(run_id)


def test_a_database_without_the_schema_is_a_page_that_says_run_migrate(
    fresh_database: Any,
) -> None:
    url = fresh_database()
    with TestClient(create_app(url), base_url="http://localhost") as browser:
        for path in ("/runs", "/queues"):
            page = browser.get(path)
            assert page.status_code == 503, (path, page.status_code)
            assert "the workflow schema is not installed in database" in page.text
            assert "singularity-workflow migrate" in page.text
def test_a_run_shows_its_version_and_the_flow_page_diffs_two_versions(
    web: TestClient, client: Client
) -> None:
    slug = "dash_versions"
    d = {"execution": "distributed"}
    v1 = {"slug": slug, "steps": [{"slug": "a", **d}, {"slug": "b", "depends_on": ["a"], **d}]}
    v2 = {"slug": slug, "steps": [{"slug": "a", "timeout": 9, **d},
                                  {"slug": "c", "depends_on": ["a"], **d}]}
    client.register_flow(v1)
    old_run = client.start_flow(slug, {})
    client.register_flow(v2)
    new_run = client.start_flow(slug, {})
    old_page = web.get(f"/runs/{old_run}").text
    assert re.search(r'id="run-version"><a href="/flows/dash_versions/versions">1</a>', old_page)
    assert 'data-step="b"' in old_page and 'data-step="c"' not in old_page  # v1's DAG
    new_page = web.get(f"/runs/{new_run}").text
    assert 'data-step="c"' in new_page and 'data-step="b"' not in new_page  # v2's DAG
    page = web.get(f"/flows/{slug}/versions").text
    assert "2 (current)" in page
    rows = dict(re.findall(r'<tr class="diff-(\w+)"><td>(\w+)</td>', page)[i][::-1]
                for i in range(3))
    assert rows == {"a": "changed", "b": "removed", "c": "added"}
    assert "timeout: 60 → 9" in page.replace("&#34;", '"')
    assert web.get(f"/flows/{slug}/versions?a=1&b=7").status_code == 404
    assert web.get("/flows/nope/versions").status_code == 404
