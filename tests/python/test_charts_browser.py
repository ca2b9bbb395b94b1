"""The dashboard's charts and a run's timeline in a real browser, drawn from real work.

Same set-up as ``test_dashboard_browser.py`` (its Chromium and page fixtures): uvicorn on a
free loopback port, a Worker in a thread of this process serving the flows below, the system's
Chromium driven by Playwright (skipped, saying why, when it cannot start). The workload is known:
eight runs of a two-step flow, one of whose first tasks fails once and is retried, and two runs
of a one-attempt flow that fail. The test checks what a person would look for: each chart has
the queue's series (the throughput line, the failure bars, the latency line, the runs by
status), the window can be switched, the page refreshes itself, and a run page's timeline shows
each task with its retries and turns a running task completed without a reload. Screenshots go
to ``build/artefacts/``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from singularity_workflow import Client, Worker, Workflow, step
from singularity_workflow.dashboard import create_app

pytest.importorskip("playwright.sync_api")

from tests.python import test_dashboard_browser as browser_tests  # noqa: E402
from tests.python.test_dashboard import serving  # noqa: E402

# The browser module's Chromium and page fixtures, and where screenshots go.
browser = browser_tests.browser
page = browser_tests.page
_artefact = browser_tests._artefact

RETRIED: set[str] = set()
LOCK = threading.Lock()


class Charted(Workflow):
    """fetch -> store on queue chart_q; a run with {"flaky": true} fails its first fetch once."""

    slug = "charted"

    @step(execution="distributed", queue="chart_q", max_attempts=2, base_delay=1)
    def fetch(self, input: dict[str, Any]) -> int:
        """Fail once for a flaky run (the retry shows on the timeline), else return n."""
        run = input["run"]
        with LOCK:
            if run.get("flaky") and str(run["n"]) not in RETRIED:
                RETRIED.add(str(run["n"]))
                raise RuntimeError("flaky first attempt")
        time.sleep(float(run.get("sleep", 0.05)))
        return int(run["n"])

    @step(depends_on=["fetch"], execution="distributed", queue="chart_q")
    def store(self, input: dict[str, Any]) -> int:
        """Double the value (slowly, when asked)."""
        time.sleep(float(input["run"].get("sleep", 0.05)))
        return int(input["fetch"]) * 2


class Doomed(Workflow):
    """One attempt that always fails, on queue chart_bad: the failure chart's bars."""

    slug = "doomed"

    @step(execution="distributed", queue="chart_bad", max_attempts=1)
    def only(self, input: dict[str, Any]) -> None:
        """Fail."""
        raise ValueError("doomed")


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture(scope="module")
def base_url(db_url: str, client: Client) -> Iterator[str]:
    worker = Worker(db_url, ["chart_q", "chart_bad"], concurrency=4, poll_interval=0.3,
                    shutdown_grace=2)
    worker.run_in_thread()
    try:
        with serving(create_app(db_url)) as url:
            yield url
    finally:
        worker.stop(wait_for_tasks=False)
        worker.join(10)


def wait_done(client: Client, runs: list[UUID], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(client.get_run_status(r).status == "in_progress" for r in runs):
        assert time.monotonic() < deadline, "runs did not finish"
        time.sleep(0.1)


def test_charts_draw_the_windows_work_and_refresh(page: Any, base_url: str,
                                                  client: Client) -> None:
    runs = [client.start_flow(Charted, {"n": n, "flaky": n == 3}) for n in range(8)]
    runs += [client.start_flow(Doomed, {}) for _ in range(2)]
    wait_done(client, runs)

    page.goto(f"{base_url}/charts?window=15m")
    page.evaluate("window.__sameDocument = 'yes'")
    assert page.locator("#charts-meta").get_attribute("data-window") == "15m"
    throughput = page.locator('#chart-throughput polyline[data-series="chart_q"],'
                              ' #chart-throughput circle')
    assert throughput.count() >= 1, "no throughput line for chart_q"
    assert page.locator('#chart-throughput .legend', has_text="chart_q").count() == 1
    bars = page.locator('#chart-failures rect.bar[data-series="chart_bad"]')
    assert bars.count() >= 1, "no failure bar for chart_bad"
    failed = sum(float(b.text_content().rsplit(": ", 1)[1]) for b in bars.all())
    assert failed == 2, f"the failure bars add up to {failed}, not 2"
    assert page.locator('#chart-latency .legend', has_text="chart_q p95").count() == 1
    assert page.locator('#chart-runs .legend', has_text="completed").count() == 1
    assert page.locator('#chart-runs polyline[data-series="completed"],'
                        ' #chart-runs circle').count() >= 1
    assert page.locator("#chart-depth").count() == 1
    # The fragment refreshes itself (every 5 s) in the same document.
    page.wait_for_selector("#charts-live[data-refreshed]", state="attached", timeout=12_000)
    assert page.evaluate("window.__sameDocument") == "yes"
    page.screenshot(path=str(_artefact("dashboard-charts-15m.png")), full_page=True)

    page.click('#windows a[data-window="24h"]')
    page.wait_for_selector('#charts-meta[data-window="24h"]')
    assert "buckets of 1440 s" in page.locator("#charts-meta").text_content()
    assert page.locator('#chart-throughput .legend', has_text="chart_q").count() == 1
    page.screenshot(path=str(_artefact("dashboard-charts-24h.png")), full_page=True)

    # The flaky run's page: its timeline shows both tasks, the retried one marked ×2.
    page.goto(f"{base_url}/runs/{runs[3]}")
    fetch = page.locator('#timeline g.task[data-step="fetch"]')
    fetch.wait_for()
    assert fetch.get_attribute("data-attempts") == "2"
    assert fetch.get_attribute("data-status") == "completed"
    assert fetch.locator(".retries").text_content() == "×2"
    assert fetch.locator("rect.wait").count() == 1 and fetch.locator("rect.run").count() == 1
    store = page.locator('#timeline g.task[data-step="store"]')
    assert store.get_attribute("data-status") == "completed"
    page.screenshot(path=str(_artefact("dashboard-run-timeline.png")), full_page=True)


def test_timeline_follows_a_running_run(page: Any, base_url: str, client: Client) -> None:
    run_id = client.start_flow(Charted, {"n": 100, "sleep": 1.5})
    page.goto(f"{base_url}/runs/{run_id}")
    page.evaluate("window.__sameDocument = 'yes'")
    page.wait_for_selector('#timeline g.task[data-step="fetch"]')
    first = page.locator('#timeline g.task[data-step="fetch"]').get_attribute("data-status")
    assert first in ("queued", "started")
    page.wait_for_selector('#timeline g.task[data-step="store"][data-status="completed"]',
                           timeout=20_000)
    assert page.evaluate("window.__sameDocument") == "yes", "the page was reloaded"
    wait_done(client, [run_id])
