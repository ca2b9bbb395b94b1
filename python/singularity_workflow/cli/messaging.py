"""CLI commands for messaging: ``send``, ``listen`` and ``notify``.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``; they take their :class:`Client`
from the click context. ``listen`` prints one JSON object per line (a notification with its
message, or a workflow event) until interrupted, so its output can be piped into ``jq`` or another
program; Ctrl-C and SIGTERM end it with exit status 0, as the normal way to stop it.
"""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType
from typing import Any

import click

from singularity_workflow._listen import Listener
from singularity_workflow.cli._base import client_of

__all__ = ["listen_command", "notify_command", "send_command"]



@click.command("send")
@click.argument("channel")
@click.argument("message", metavar="JSON")
@click.pass_context
def send_command(ctx: click.Context, channel: str, message: str) -> None:
    """Persist the JSON MESSAGE on CHANNEL, notify its listeners and print the message id."""
    try:
        value = json.loads(message)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="JSON") from exc
    click.echo(client_of(ctx).send_with_notify(channel, value))


@click.command("notify")
@click.argument("channel")
@click.argument("payload", default="")
@click.pass_context
def notify_command(ctx: click.Context, channel: str, payload: str) -> None:
    """Send PAYLOAD to CHANNEL's listeners without storing it (under 8,000 bytes)."""
    client_of(ctx).notify_only(channel, payload)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into the same clean stop as Ctrl-C."""
    raise KeyboardInterrupt


@click.command("listen")
@click.argument("channels", nargs=-1, required=True)
@click.option("--replay-from", type=click.IntRange(min=0), default=None, metavar="ID",
              help="First print the persisted messages (or events) with ids above ID"
              " (0: the whole history).")
@click.option("--count", "-n", type=click.IntRange(min=1), default=None,
              help="Exit after printing this many items.")
@click.pass_context
def listen_command(
    ctx: click.Context, channels: tuple[str, ...], replay_from: int | None, count: int | None
) -> None:
    """Print what arrives on CHANNEL... as JSON lines until interrupted (Ctrl-C, SIGTERM).

    Application channels print {"channel", "message_id", "payload", "message", ...}; the
    engine's workflow_run_events and workflow_run_<run id> print their events. A dropped
    connection is re-established and what was missed is printed, once.
    """
    client = client_of(ctx)
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    listener = Listener(channels, client=client, replay_from=replay_from)
    try:
        if in_main:
            previous = signal.signal(signal.SIGTERM, _interrupt)
        listener.start()
        click.echo(f"listening on {', '.join(channels)}", err=True)
        printed = 0
        for item in listener:
            click.echo(json.dumps(item.as_json(), default=str, ensure_ascii=False))
            printed += 1
            if count is not None and printed >= count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
