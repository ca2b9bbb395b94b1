"""CLI commands for running things: ``worker``, ``workers`` and ``run``.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. They take their :class:`Client`
from the click context (the group puts one there), or else build one over ``DATABASE_URL``. Errors
(WorkflowError, psycopg errors, ClickException) are left to the group, which shows them as one
``error:`` line with exit status 1.

The ``worker`` command's exit statuses (docs/operations.md lists them for supervisors): 0 after
a clean stop, 1 for an error it reports (a module that cannot be imported, a database it cannot
reach), 2 for bad command-line usage, and :data:`EXIT_SCHEMA_MISSING` (3) when the database has
no workflow schema, which restarting will not fix.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
from typing import Any
from uuid import UUID, uuid4

import click

from singularity_workflow._client import Client
from singularity_workflow._errors import SchemaNotInstalled
from singularity_workflow._logging import FORMATS
from singularity_workflow._logging import configure as configure_logging
from singularity_workflow._notify import Notifier
from singularity_workflow._types import RunStatus
from singularity_workflow.cli._base import client_of, dump, table
from singularity_workflow.worker import Worker, import_modules

__all__ = [
    "EXIT_SCHEMA_MISSING",
    "metrics_command",
    "progress_text",
    "run_command",
    "worker_command",
    "workers_command",
]

#: The worker's exit status when the database has no workflow schema (run the migrations).
EXIT_SCHEMA_MISSING = 3


@click.command("worker")
@click.option("--queue", "-q", "queues", multiple=True, default=("default",), show_default=True,
              help="Queue to serve (repeat for several).")
@click.option("--resource", "resources", multiple=True,
              help="Resource this worker offers, e.g. gpu (repeat for several); it then also"
              " claims steps that require it.")
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True,
              help="Tasks run at once (sync and async handlers together).")
@click.option("--import", "-i", "imports", multiple=True,
              help="Module that defines workflows, imported so its handlers are registered.")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
              help="Seconds between polls when no notification arrives.")
@click.option("--shutdown-grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds in-flight tasks get to finish after SIGTERM/SIGINT.")
@click.option("--worker-id", default=None, help="Name recorded on claimed tasks [host:pid:random].")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--log-format", type=click.Choice(FORMATS), default=None,
              help="Log lines as text, key=value (kv) or JSON [the group's --log-format].")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535), default=None,
              help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics"
              " (0: any free port).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address the metrics endpoint binds to (0.0.0.0: every interface).")
@click.argument("modules", nargs=-1)
@click.pass_context
def worker_command(
    ctx: click.Context,
    queues: tuple[str, ...],
    resources: tuple[str, ...],
    concurrency: int,
    imports: tuple[str, ...],
    poll_interval: float,
    shutdown_grace: float,
    worker_id: str | None,
    log_level: str,
    log_format: str | None,
    metrics_port: int | None,
    metrics_host: str,
    modules: tuple[str, ...],
) -> None:
    """Serve queues until SIGTERM/SIGINT, running the handlers of the imported MODULES.

    A first signal stops claiming and lets running tasks finish (up to --shutdown-grace); a
    second one stops at once (unfinished tasks are run again elsewhere once their leases lapse).
    """
    configure_logging(log_level, log_format or ctx.find_root().meta.get("log_format", "text"))
    try:
        import_modules(imports + modules)
    except ImportError as exc:
        raise click.ClickException(f"cannot import a workflow module: {exc}") from exc
    client = client_of(ctx)
    try:
        # One cheap read before anything starts: a database without the schema is a setup
        # mistake that a restart cannot fix, so it gets its own exit status, not a traceback.
        client.list_workers()
    except SchemaNotInstalled as exc:
        click.echo(f"error: {exc.describe()}", err=True)
        ctx.exit(EXIT_SCHEMA_MISSING)
    Worker(
        client,
        queues,
        resources=resources,
        concurrency=concurrency,
        poll_interval=poll_interval,
        worker_id=worker_id,
        shutdown_grace=shutdown_grace,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    ).run()


@click.command("workers")
@click.option("--all", "include_dead", is_flag=True,
              help="Also list stopped workers and those whose heartbeat lapsed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def workers_command(ctx: click.Context, include_dead: bool, as_json: bool) -> None:
    """List the registered workers that are alive (with --all: every registered one).

    A worker is alive while it heartbeats; one that stops heartbeating drops off this list and
    its tasks are released at once.
    """
    found = client_of(ctx).list_workers(include_dead=include_dead)
    if as_json:
        click.echo(dump([w.to_dict() for w in found]))
        return
    if not found:
        click.echo("no live workers" if not include_dead else "no workers registered")
        return
    rows = [
        (
            w.worker_id,
            w.host,
            w.pid,
            ",".join(w.queues) if w.queues is not None else "any",
            ",".join(w.resources) or None,
            "any" if w.handler_count is None else w.handler_count,
            w.version,
            None if w.heartbeat_at is None else w.heartbeat_at.isoformat(" ", "seconds"),
            "yes" if w.alive else "no",
        )
        for w in found
    ]
    headers = ("worker", "host", "pid", "queues", "resources", "handlers", "version",
               "last_heartbeat", "alive")
    click.echo(table(headers, rows))


@click.command("metrics")
@click.option("--window", type=click.FloatRange(min=0.001), default=300.0, show_default=True,
              help="Seconds of history the completions, failures and percentiles cover.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def metrics_command(ctx: click.Context, window: float, as_json: bool) -> None:
    """Show per queue and flow the tasks ready, waiting, running now, and the window's history.

    The same numbers as the dashboard's /metrics (workflow.metrics): ready, waiting on limits,
    delayed, paused and running tasks now; completed and failed tasks, claim latency and
    duration percentiles (seconds) over the last --window seconds.
    """
    found = client_of(ctx).metrics(window)
    if as_json:
        click.echo(dump([dataclasses.asdict(m) for m in found]))
        return
    if not found:
        click.echo("no tasks now or in the window")
        return

    def sec(value: float | None) -> str | None:
        return None if value is None else f"{value:.3f}"

    rows = [
        (m.queue, m.flow_slug, m.ready, m.waiting_on_limits, m.delayed, m.paused, m.running,
         m.completed, m.failed, sec(m.oldest_ready_seconds), sec(m.claim_latency_p50_seconds),
         sec(m.claim_latency_p95_seconds), sec(m.duration_p50_seconds),
         sec(m.duration_p95_seconds))
        for m in found
    ]
    headers = ("queue", "flow", "ready", "limited", "delayed", "paused", "running", "completed",
               "failed", "oldest_ready_s", "claim_p50_s", "claim_p95_s", "run_p50_s",
               "run_p95_s")
    click.echo(table(headers, rows))


@click.command("run")
@click.argument("flow")
@click.option("--input", "input_json", default="{}", show_default=True,
              help="The run's input, as JSON (an object, or an array for a root map step).")
@click.option("--wait", is_flag=True, help="Wait for the end, showing progress; print the output.")
@click.option("--timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="With --wait: seconds to wait before giving up (the run goes on).")
@click.pass_context
def run_command(ctx: click.Context, flow: str, input_json: str, wait: bool,
                timeout: float) -> None:
    """Start a run of FLOW and print its run id (with --wait: its output JSON).

    Only distributed steps can progress without a process executing the run: a flow with
    local steps needs execute() in the application instead.
    """
    try:
        data = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--input") from exc
    client = client_of(ctx)
    if not wait:
        click.echo(str(client.start_flow(flow, data)))
        return
    _run_and_wait(client, flow, data, timeout)


def progress_text(status: RunStatus) -> str:
    """Say how far a run is: ``2/5 steps done; running: fetch, parse`` (and who waits)."""
    text = f"{status.completed_steps}/{status.total_steps} steps done"
    running = [s.step for s in status.steps if s.status == "started"]
    if running:
        text += "; running: " + ", ".join(running)
    if status.waiting_for_worker:
        text += "; waiting for a worker: " + ", ".join(status.waiting_for_worker)
    return text


def _run_and_wait(client: Client, flow: str, data: Any, timeout: float) -> None:
    """Start a run, show its progress until it ends, print its output.

    On a terminal: a bar of the steps done with the running steps' names beside it. Otherwise
    (a pipe, a log): one line each time the progress changes, which a bar cannot give there.
    """
    run_id = uuid4()
    # LISTEN before the start, so even a run that ends at once is not missed; the notifier
    # reconnects if the connection drops, and the status read below never depends on it.
    with Notifier(client.connect_dedicated, [f"workflow_run_{run_id}"],
                  name=f"run {run_id}: waiter") as notifier:
        client.start_flow(flow, data, run_id=run_id)
        click.echo(f"run {run_id} started", err=True)
        deadline = time.monotonic() + timeout
        status = client.get_run_status(run_id)
        tty = sys.stderr.isatty()
        with click.progressbar(length=max(status.total_steps, 1), label="steps done",
                               file=sys.stderr if tty else io.StringIO(), show_pos=True,
                               item_show_func=lambda item: item) as bar:
            shown = 0
            line = ""
            while True:
                text = progress_text(status)
                running = text.partition("; ")[2] or None
                bar.update(max(0, status.completed_steps - shown), current_item=running)
                shown = max(shown, status.completed_steps)
                if not tty and text != line:
                    click.echo(f"progress: {text}", err=True)
                line = text
                if status.finished or time.monotonic() >= deadline:
                    break
                # Sleep until the run's next notification, or half a second for the bar.
                notifier.receive(min(0.5, max(0.0, deadline - time.monotonic())), stop_after=1)
                status = client.get_run_status(run_id)
    _report_end(status, run_id)


def _report_end(run: RunStatus, run_id: UUID) -> None:
    if run.status == "completed":
        click.echo(dump(run.output))
        return
    if run.status == "failed":
        raise click.ClickException(
            f"run {run_id} failed in step {run.failed_step}: {run.error}"
        )
    raise click.ClickException(
        f"run {run_id} still {run.state} after the timeout"
        f" ({run.completed_steps} of {run.total_steps} steps completed); it goes on:"
        f" `singularity-workflow status {run_id}`"
    )
