"""The dashboard in a real browser: headless Chromium driven by Playwright, against real workers.

The dashboard runs in uvicorn on a free loopback port and Workers run in threads of this
process, all on the module's database. The browser is the system's Chromium (Debian's
``chromium`` package, which scripts/test.sh installs); Playwright never downloads one. If it
cannot be started, these tests skip and say why.

What a person would check by looking is asserted in the page: the DAG's steps turn completed
while the page stays open (the same document, no reload), the buttons pause, resume, cancel
and retry after their confirmation dialogs, and a step output carrying a script is shown as
text and never runs. Screenshots of the runs list and of a run page are saved under
``build/artefacts/``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from singularity_workflow import Client, Worker, Workflow, step
from singularity_workflow.dashboard import create_app

playwright_sync = pytest.importorskip("playwright.sync_api")

from tests.python.test_dashboard import SCRIPT, serving  # noqa: E402  (after the importorskip)

CHROMIUM = os.environ.get("SW_CHROMIUM", "/usr/bin/chromium")
#: The launch flags this machine's closed network needs (no background connections at all).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTEFACTS = Path(__file__).resolve().parents[2] / "build" / "artefacts"
#: Upper bound of any single wait in the page (ms); the whole module stays well under a minute.
WAIT_MS = 15_000
#: Set by the map handlers: a gate that holds the slow flow's tasks until a test releases it.
GATE = threading.Event()


class BrowserDemo(Workflow):
    """A diamond with a map: prepare -> (each item, side) -> report, ending on a script."""

    slug = "browser_demo"

    @step(execution="distributed", queue="browser_q")
    def prepare(self, input: dict[str, Any]) -> list[int]:
        """Return the items, after a moment so that the page sees the run in progress."""
        time.sleep(0.8)
        return list(range(int(input["run"]["n"])))

    @step(depends_on=["prepare"], map=True, execution="distributed", queue="browser_q")
    def each(self, item: int) -> int:
        """Square an item, slowly."""
        time.sleep(0.3)
        return item * item

    @step(depends_on=["prepare"], execution="distributed", queue="browser_q")
    def side(self, input: dict[str, Any]) -> str:
        """Return a marked-up string on a parallel branch."""
        time.sleep(0.4)
        return "<b>side</b>"

    @step(depends_on=["each", "side"], execution="distributed", queue="browser_q")
    def report(self, input: dict[str, Any]) -> dict[str, Any]:
        """End with an output that carries markup and a script."""
        return {"total": sum(input["each"]), "note": SCRIPT}


class BrowserSlow(Workflow):
    """One step whose tasks wait for GATE: a run that stays running until a test says so."""

    slug = "browser_slow"

    @step(execution="distributed", queue="browser_slow")
    def items(self, input: dict[str, Any]) -> list[int]:
        """Return the items."""
        return list(range(int(input["run"]["n"])))

    @step(depends_on=["items"], map=True, execution="distributed", queue="browser_slow")
    def work(self, item: int) -> int:
        """Wait for the gate (at most 30 s), then finish."""
        GATE.wait(30)
        return item


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        c.register_flow(BrowserDemo)
        c.register_flow(BrowserSlow)
        yield c


@pytest.fixture(scope="module")
def workers(db_url: str, client: Client) -> Iterator[list[Worker]]:
    started = []
    for queues in (["browser_q"], ["browser_slow"]):
        w = Worker(db_url, queues, concurrency=4, poll_interval=0.5, shutdown_grace=2)
        w.run_in_thread()
        started.append(w)
    yield started
    GATE.set()
    for w in started:
        w.stop(wait_for_tasks=False)
    for w in started:
        w.join(10)


@pytest.fixture(scope="module")
def base_url(db_url: str, workers: list[Worker]) -> Iterator[str]:
    with serving(create_app(db_url)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Start the system's Chromium through Playwright; skip (saying why) if it cannot start."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/test.sh does)")
    with playwright_sync.sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True, timeout=30_000)
        except Exception as exc:  # Playwright reports a failed start with its own error types
            pytest.skip(f"Chromium at {CHROMIUM} could not be started: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"script errors in the page: {errors}"


def node(page: Any, step_slug: str) -> Any:
    """Return the DAG node of a step."""
    return page.locator(f'#dag g.node[data-step="{step_slug}"]')


def test_dag_turns_completed_live_and_a_script_output_does_not_run(
    page: Any, base_url: str, client: Client
) -> None:
    run_id = client.start_flow("browser_demo", {"n": 6})
    page.goto(f"{base_url}/runs/{run_id}")
    # Mark this document: a reload would lose the mark.
    page.evaluate("window.__sameDocument = 'yes'")
    assert node(page, "report").get_attribute("data-state") in ("queued", "running")
    for slug in ("prepare", "each", "side", "report"):
        page.wait_for_selector(f'#dag g.node[data-step="{slug}"][data-state="completed"]')
    page.wait_for_selector('#run-state[data-state="completed"]')
    assert page.evaluate("window.__sameDocument") == "yes", "the page was reloaded"
    assert node(page, "each").locator(".tasks").text_content() == "6/6 tasks"
    assert page.locator('#steps-table tr[data-step="each"] [data-field="tasks"]').text_content() \
        == "6/6"
    # The run output arrived through the live feed: shown as text, never executed.
    output = page.locator("#run-output")
    assert SCRIPT in output.text_content()
    assert output.is_visible()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # A completed run offers no pause, resume or cancel, and no retry (it did not fail).
    for action in ("pause", "resume", "cancel", "retry"):
        assert not page.locator(f"#act-{action}").is_visible(), action
    page.screenshot(path=str(_artefact("dashboard-run.png")), full_page=True)
    # And the same on a fresh load of the finished run and of the step's page.
    page.reload()
    assert SCRIPT in page.locator("#run-output").text_content()
    page.goto(f"{base_url}/runs/{run_id}/steps/report")
    assert SCRIPT in page.locator("#step-output").text_content()
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_runs_list_updates_itself_and_filters(page: Any, base_url: str, client: Client) -> None:
    page.goto(f"{base_url}/runs")
    page.wait_for_selector('#live-indicator[data-ok="yes"]')
    GATE.clear()
    run_id = client.start_flow("browser_slow", {"n": 2})
    # The new run appears without a reload, from the live feed.
    page.wait_for_selector(f'#runs-table tr[data-run="{run_id}"]')
    page.select_option("#filter-state", "completed")
    page.click(".filters button[type=submit]")
    page.wait_for_selector('#runs-table tr[data-state="completed"]')
    assert page.locator(f'#runs-table tr[data-run="{run_id}"]').count() == 0
    GATE.set()


def test_buttons_pause_resume_cancel_and_retry(page: Any, base_url: str, client: Client) -> None:
    GATE.clear()
    run_id = client.start_flow("browser_slow", {"n": 8})
    page.goto(f"{base_url}/runs/{run_id}")
    page.wait_for_selector('#dag g.node[data-step="work"][data-state="running"]')
    # A declined confirmation sends nothing.
    page.once("dialog", lambda d: d.dismiss())
    page.click("#act-pause button")
    page.wait_for_timeout(300)
    assert client.get_run_status(run_id).state == "running"
    page.on("dialog", lambda d: d.accept())
    page.click("#act-pause button")
    page.wait_for_selector('#run-state[data-state="paused"]')
    assert client.get_run_status(run_id).state == "paused"
    assert page.locator("#flash").text_content() == "Run paused."
    page.click("#act-resume button")
    page.wait_for_selector('#run-state[data-state="running"]')
    assert client.get_run_status(run_id).state == "running"
    page.fill("#cancel-reason", "stopped from the browser")
    page.click("#act-cancel button")
    page.wait_for_selector('#run-state[data-state="cancelled"]')
    status = client.get_run_status(run_id)
    assert status.state == "cancelled" and status.error == "stopped from the browser"
    assert "stopped from the browser" in page.locator("#run-error").text_content()
    page.screenshot(path=str(_artefact("dashboard-run-cancelled.png")), full_page=True)
    # Retry (reset all) from the cancelled run: a new run page, which then completes live.
    GATE.set()
    page.select_option("#retry-mode", "reset_all")
    page.click("#act-retry button")
    page.wait_for_url(lambda url: str(run_id) not in url and "/runs/" in url)
    new_id = page.url.split("/runs/")[1].split("?")[0]
    assert client.get_run_status(new_id).retry_of == status.run_id
    page.wait_for_selector('#run-state[data-state="completed"]')
    assert page.locator('#dag g.node[data-state="completed"]').count() == 2
    # The list now holds running, completed and cancelled runs: the screenshot shows them.
    page.goto(f"{base_url}/runs")
    page.screenshot(path=str(_artefact("dashboard-runs.png")), full_page=True)


def _artefact(name: str) -> Path:
    """Return a path under build/artefacts/ (created), for screenshots to look at."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS / name
