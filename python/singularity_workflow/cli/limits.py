"""CLI group ``limits``: list, set and remove concurrency and rate limits.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. Each command is one call of
the client's limit methods (one SQL function each: ``list_limits``, ``set_concurrency_limit``,
``set_rate_limit``, ``remove_limit``); bad values are refused by the server (InvalidLimit,
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
    """Limits: at most N tasks running at once, or N starts per window, per queue/flow/step/key."""


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
        ("kind", "scope", "name", "key path", "key", "in use", "limit"),
        [
            (u.kind, u.scope, u.name, u.key_path, u.key, u.in_use,
             u.max_count if u.per_seconds is None else f"{u.max_count}/{u.per_seconds:g}s")
            for u in uses
        ],
    ))


@limits_group.command("set")
@click.argument("scope", type=click.Choice(_SCOPES))
@click.argument("name")
@click.argument("count", type=int)
@click.option(
    "--key-path", default=None, help="For a key limit: the path into the run input (tenant_id)."
)
@click.option(
    "--per", "per_seconds", type=float, default=None,
    help="Make it a rate limit: COUNT starts per this many seconds.",
)
@click.pass_context
def set_command(
    ctx: click.Context,
    scope: str,
    name: str,
    count: int,
    key_path: str | None,
    per_seconds: float | None,
) -> None:
    """Set a limit: SCOPE NAME COUNT (a step is named <flow>.<step>).

    COUNT tasks running at once, or with --per, COUNT starts per that many seconds.
    """
    client = client_of(ctx)
    if per_seconds is None:
        client.set_concurrency_limit(scope, name, count, key_path=key_path)
        click.echo(f"{scope} {name}: at most {count} running")
    else:
        client.set_rate_limit(scope, name, count, per_seconds, key_path=key_path)
        click.echo(f"{scope} {name}: at most {count} starts per {per_seconds:g} s")


@limits_group.command("remove")
@click.argument("scope", type=click.Choice(_SCOPES))
@click.argument("name")
@click.option("--rate", is_flag=True, help="Remove the rate limit (default: the concurrency one).")
@click.pass_context
def remove_command(ctx: click.Context, scope: str, name: str, rate: bool) -> None:
    """Remove a limit (a no-op when there is none)."""
    client = client_of(ctx)
    if rate:
        removed = client.remove_rate_limit(scope, name)
    else:
        removed = client.remove_concurrency_limit(scope, name)
    click.echo(f"{scope} {name}: {'removed' if removed else 'no such limit'}")
