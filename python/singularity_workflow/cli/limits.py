"""CLI group ``limits``: list, set and remove concurrency limits.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. Each command is one call of
the client's limit methods (one SQL function each: ``list_limits``, ``set_concurrency_limit``,
``remove_concurrency_limit``); bad values are refused by the server (InvalidLimit,
InvalidKeyPath, FlowNotFound, StepNotFound) and shown by the group as one error line.
"""

from __future__ import annotations

import dataclasses

import click

from singularity_workflow.cli._base import client_of, dump, table

__all__ = ["limits_group"]

_SCOPES = ("queue", "flow", "step", "key")


@click.group("limits")
def limits_group() -> None:
    """Concurrency limits: at most N tasks running at once per queue, flow, step or key."""


@limits_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the limits and their use (one row per key in use)."""
    uses = client_of(ctx).list_limits()
    if as_json:
        click.echo(dump([dataclasses.asdict(u) for u in uses]))
        return
    if not uses:
        click.echo("no limits")
        return
    click.echo(table(
        ("scope", "name", "key path", "key", "in use", "limit"),
        [(u.scope, u.name, u.key_path, u.key, u.in_use, u.max_running) for u in uses],
    ))


@limits_group.command("set")
@click.argument("scope", type=click.Choice(_SCOPES))
@click.argument("name")
@click.argument("max_running", type=int)
@click.option(
    "--key-path", default=None, help="For a key limit: the path into the run input (tenant_id)."
)
@click.pass_context
def set_command(
    ctx: click.Context, scope: str, name: str, max_running: int, key_path: str | None
) -> None:
    """Set a limit: SCOPE NAME MAX_RUNNING (a step is named <flow>.<step>)."""
    client_of(ctx).set_concurrency_limit(scope, name, max_running, key_path=key_path)
    click.echo(f"{scope} {name}: at most {max_running} running")


@limits_group.command("remove")
@click.argument("scope", type=click.Choice(_SCOPES))
@click.argument("name")
@click.pass_context
def remove_command(ctx: click.Context, scope: str, name: str) -> None:
    """Remove a limit (a no-op when there is none)."""
    removed = client_of(ctx).remove_concurrency_limit(scope, name)
    click.echo(f"{scope} {name}: {'removed' if removed else 'no such limit'}")
