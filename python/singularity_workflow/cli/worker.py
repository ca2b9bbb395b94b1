"""CLI commands for running things: ``worker`` and ``run``.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. They take their :class:`Client`
from the click context (the group puts one there), or else build one over ``DATABASE_URL``. Errors
(WorkflowError, psycopg errors, ClickException) are left to the group, which shows them as one
``error:`` line with exit status 1.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any
from uuid import UUID, uuid4

import click

from singularity_workflow._client import Client
from singularity_workflow._notify import Notifier
from singularity_workflow._types import RunStatus
from singularity_workflow.cli._base import client_of, dump
from singularity_workflow.worker import Worker, import_modules

__all__ = ["run_command", "worker_command"]


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
    modules: tuple[str, ...],
) -> None:
    """Serve queues until SIGTERM/SIGINT, running the handlers of the imported MODULES.

    A first signal stops claiming and lets running tasks finish (up to --shutdown-grace); a
    second one stops at once (unfinished tasks are run again elsewhere once their leases lapse).
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import_modules(imports + modules)
    except ImportError as exc:
        raise click.ClickException(f"cannot import a workflow module: {exc}") from exc
    Worker(
        client_of(ctx),
        queues,
        resources=resources,
        concurrency=concurrency,
        poll_interval=poll_interval,
        worker_id=worker_id,
        shutdown_grace=shutdown_grace,
    ).run()


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
    local steps needs ``execute()`` in the application instead.
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


def _run_and_wait(client: Client, flow: str, data: Any, timeout: float) -> None:
    """Start a run, show a progress bar of its steps until it ends, print its output."""
    run_id = uuid4()
    # LISTEN before the start, so even a run that ends at once is not missed; the notifier
    # reconnects if the connection drops, and the status read below never depends on it.
    with Notifier(client.connect_dedicated, [f"workflow_run_{run_id}"],
                  name=f"run {run_id}: waiter") as notifier:
        client.start_flow(flow, data, run_id=run_id)
        click.echo(f"run {run_id} started", err=True)
        deadline = time.monotonic() + timeout
        status = client.get_run_status(run_id)
        with click.progressbar(length=max(status.total_steps, 1), label="steps",
                               file=sys.stderr, show_pos=True) as bar:
            shown = 0
            while True:
                if status.completed_steps > shown:
                    bar.update(status.completed_steps - shown)
                    shown = status.completed_steps
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
