"""CLI commands that watch and control runs: status, runs, cancel, pause, resume, retry.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. Each is one call of the client's
lifecycle methods (one SQL function each), so what the command line can do is exactly what
``psql`` and the Python API can do. Errors (RunNotFound, InvalidState, InvalidOption ...) are
left to the group, which shows them as one ``error: ... (SQLSTATE WFnnn)`` line, exit status 1.

Output: ``status`` prints the run's status JSON (scripts read it; ``--text`` gives a summary
for people); ``runs`` prints a table (``--json`` for scripts); the control commands print one
line saying what happened, and ``retry`` prints only the new run id so that it composes
(``new=$(singularity-workflow retry $id)``).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import click

from singularity_workflow._errors import InvalidState
from singularity_workflow._types import DEFAULT_CANCEL_REASON, RunStatus, WorkflowRun
from singularity_workflow.cli._base import client_of, table

__all__ = [
    "LIFECYCLE_COMMANDS",
    "cancel_command",
    "pause_command",
    "resume_command",
    "rerun_command",
    "retry_command",
    "runs_command",
    "status_command",
]

#: Characters of an error message shown in the ``runs`` table (the rest is in ``status``).
_ERROR_WIDTH = 60


def _when(value: Any) -> str | None:
    """Format a timestamp for a table cell (seconds precision), None as is."""
    return None if value is None else value.isoformat(" ", "seconds")


def _short(text: str | None, width: int = _ERROR_WIDTH) -> str | None:
    """First line of ``text``, cut to ``width`` characters, for a table cell."""
    if text is None:
        return None
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def _status_text(status: RunStatus) -> str:
    """Summarise a run for people: one line per fact, then a table of its steps."""
    lines = [
        f"run {status.run_id} of {status.flow_slug}: {status.state}",
        f"progress: {status.completed_steps}/{status.total_steps} steps ({status.percentage:g}%)",
        f"started:  {_when(status.started_at)}",
    ]
    for label, value in (
        ("paused:   ", status.paused_at),
        ("finished: ", status.finished_at),
        ("deadline: ", status.deadline_at),
    ):
        if value is not None:
            lines.append(f"{label}{_when(value)}")
    if status.retry_of is not None:
        lines.append(f"retry of: {status.retry_of}")
    if status.error is not None:
        where = f" (step {status.failed_step})" if status.failed_step else ""
        lines.append(f"error{where}: {status.error}")
    if status.waiting_for_worker:
        lines.append(
            "waiting:  for a worker that can run "
            + ", ".join(status.waiting_for_worker)
            + " (no live worker serves its queue with its handler and resources)"
        )
    rows = [
        (
            s.step,
            s.type,
            s.status,
            None if s.tasks is None else f"{s.tasks_completed}/{s.tasks}",
            s.attempts,
            _when(s.started_at),
            _when(s.completed_at or s.failed_at),
            _short(s.error),
        )
        for s in status.steps
    ]
    headers = ("step", "type", "status", "tasks", "attempts", "started_at", "ended_at", "error")
    return "\n".join(lines) + "\n\n" + table(headers, rows)


@click.command("status")
@click.argument("run_id", type=click.UUID)
@click.option(
    "--text", "as_text", is_flag=True, help="Print a summary and a table of steps instead of JSON."
)
@click.pass_context
def status_command(ctx: click.Context, run_id: UUID, as_text: bool) -> None:
    """Print a run's status: state, progress, per-step states, timings and error.

    The JSON has "status" (completed, failed or in_progress) and "state" (running, paused,
    completed, failed or cancelled); a step with "waiting_for_worker": true has tasks that no
    live registered worker can run (they stay queued until one starts).
    """
    status = client_of(ctx).get_run_status(run_id)
    if as_text:
        click.echo(_status_text(status))
    else:
        click.echo(json.dumps(status.to_dict(), indent=2, ensure_ascii=False))


def _runs_table(runs: list[WorkflowRun]) -> str:
    rows = [
        (
            r.run_id,
            r.flow_slug,
            r.state,
            r.remaining_steps,
            _when(r.started_at),
            _when(r.finished_at),
            _short(r.error_message),
        )
        for r in runs
    ]
    headers = ("run_id", "flow", "state", "steps_left", "started_at", "ended_at", "error")
    return table(headers, rows)


@click.command("runs")
@click.option(
    "--status",
    default=None,
    metavar="STATUS",
    help="started, scheduled, in_progress (both), completed, failed, paused or cancelled [all].",
)
@click.option("--flow", "flow_slug", default=None, metavar="SLUG", help="Only runs of this flow.")
@click.option("--limit", type=int, default=20, show_default=True, help="Runs to show (1-1000).")
@click.option("--offset", type=int, default=0, show_default=True, help="Runs to skip first.")
@click.option(
    "--order-by",
    default="inserted_at",
    show_default=True,
    metavar="COLUMN",
    help="inserted_at, started_at, completed_at, failed_at, flow_slug or status.",
)
@click.option("--desc/--asc", "descending", default=True, help="Order direction [desc].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def runs_command(
    ctx: click.Context,
    status: str | None,
    flow_slug: str | None,
    limit: int,
    offset: int,
    order_by: str,
    descending: bool,
    as_json: bool,
) -> None:
    """List runs, newest first: filter by status and flow, order, page."""
    runs = client_of(ctx).list_workflow_runs(
        status,
        flow_slug,
        limit=limit,
        offset=offset,
        order_by=("desc" if descending else "asc", order_by),
    )
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs], indent=2, ensure_ascii=False))
    elif not runs:
        click.echo("no runs")
    else:
        click.echo(_runs_table(runs))


@click.command("cancel")
@click.argument("run_id", type=click.UUID)
@click.option(
    "--reason", default=DEFAULT_CANCEL_REASON, show_default=True, help="Recorded as the error."
)
@click.option("--force", is_flag=True, help="Mark a run that already ended as cancelled too.")
@click.pass_context
def cancel_command(ctx: click.Context, run_id: UUID, reason: str, force: bool) -> None:
    """Cancel a run: its queued work is removed, running tasks are refused at their next report.

    Cancelling a run that already ended is an error unless --force.
    """
    client = client_of(ctx)
    try:
        client.cancel_workflow_run(run_id, reason, force=force)
    except InvalidState as exc:
        if exc.sql_hint and "force" in exc.sql_hint:
            # The hint in this command's words: the option, not Python's force=True.
            exc.hint = "Pass --force to mark it cancelled anyway."
        raise
    # Cancelling a cancelled run keeps its first reason: print what is stored, not the argument.
    stored = client.get_run_status(run_id).error
    click.echo(f"run {run_id} cancelled: {stored if stored is not None else reason}")


@click.command("pause")
@click.argument("run_id", type=click.UUID)
@click.pass_context
def pause_command(ctx: click.Context, run_id: UUID) -> None:
    """Pause a run: nothing new of it is claimed; running tasks finish. Safe to repeat."""
    client_of(ctx).pause_workflow_run(run_id)
    click.echo(f"run {run_id} paused")


@click.command("resume")
@click.argument("run_id", type=click.UUID)
@click.pass_context
def resume_command(ctx: click.Context, run_id: UUID) -> None:
    """Resume a paused run: its held work becomes claimable again. Safe to repeat."""
    client_of(ctx).resume_workflow_run(run_id)
    click.echo(f"run {run_id} resumed")


@click.command("retry")
@click.argument("run_id", type=click.UUID)
@click.option("--reset-all", is_flag=True, help="Run every step again, not only the failed ones.")
@click.pass_context
def retry_command(ctx: click.Context, run_id: UUID, reset_all: bool) -> None:
    """Retry a failed run as a new run with the same input; print the new run id.

    Steps that completed in the failed run keep their outputs and are not run again, unless
    --reset-all.
    """
    new_run = client_of(ctx).retry_failed_workflow(run_id, reset_all=reset_all)
    click.echo(str(new_run))


@click.command("rerun")
@click.argument("run_id", type=click.UUID)
@click.option("--from", "step", required=True, help="The step to run again, with what follows it.")
@click.option("--reason", default=None, help="Why (recorded on the new run).")
@click.pass_context
def rerun_command(ctx: click.Context, run_id: UUID, step: str, reason: str | None) -> None:
    """Restart a failed or completed run from a step, as a new run; print the new run id.

    Steps not downstream of --from that completed keep their outputs; a map step over an
    unchanged input runs only the elements that did not complete.
    """
    new_run = client_of(ctx).resume_from_step(run_id, step, reason=reason)
    click.echo(str(new_run))


#: Every command of this module, in the order ``cli.py`` adds them.
LIFECYCLE_COMMANDS = (
    status_command,
    runs_command,
    cancel_command,
    pause_command,
    resume_command,
    retry_command,
    rerun_command,
)
