"""CLI commands that wake wait steps: send-event, approve, reject.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. Each is one call of the
client (``send_event``, ``approve``, ``reject``: one SQL function each). They print one line:
``delivered to run <id> step <step>``, or ``kept until <time> (no step waits yet)`` when the
event is kept for a wait step that has not started. Errors (InvalidEvent, UnknownEvent,
NotAWaitStep, StepNotWaiting ...) are left to the group, which prints one ``error:`` line.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import click

from singularity_workflow.cli._base import client_of

__all__ = ["EVENT_COMMANDS", "approve_command", "reject_command", "send_event_command"]


def _report(result: dict[str, Any]) -> str:
    """One line for what the server did with the event."""
    if result.get("status") == "delivered":
        return f"delivered to run {result['run_id']} step {result['step']}"
    return f"kept until {result.get('expires_at')} (no step waits yet)"


@click.command("send-event")
@click.argument("name")
@click.argument("key")
@click.argument("payload", required=False, default="null")
@click.option("--keep", type=click.FloatRange(min=1), default=None,
              help="Seconds to keep it for a wait step that has not started (default one day).")
@click.pass_context
def send_event_command(
    ctx: click.Context, name: str, key: str, payload: str, keep: float | None
) -> None:
    """Send event NAME for KEY (a run id, or the input value a wait step keys on).

    PAYLOAD is JSON (default null); it becomes the output of the wait step it wakes.
    """
    try:
        value = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="PAYLOAD") from exc
    click.echo(_report(client_of(ctx).send_event(name, key, value, keep=keep)))


def _answer_command(kind: str) -> click.Command:
    """Build the approve or reject command (they differ only in the decision)."""

    @click.command(kind)
    @click.argument("run_id", type=click.UUID)
    @click.argument("step")
    @click.option("--by", default=None, help="Who decides (recorded in the step's output).")
    @click.option("--comment", default=None, help="Why (recorded in the step's output).")
    @click.pass_context
    def command(
        ctx: click.Context, run_id: UUID, step: str, by: str | None, comment: str | None
    ) -> None:
        client = client_of(ctx)
        answer = client.approve if kind == "approve" else client.reject
        click.echo(_report(answer(run_id, step, by, comment)))

    command.help = (
        f"{kind.capitalize()} wait step STEP of run RUN_ID: it completes with"
        f' {{"approved": {"true" if kind == "approve" else "false"}, "by", "comment", "at"}}.'
        " Kept if the step has not started yet; refused if it was already decided."
    )
    return command


approve_command = _answer_command("approve")
reject_command = _answer_command("reject")

#: The commands of this module, for the group.
EVENT_COMMANDS = (send_event_command, approve_command, reject_command)
