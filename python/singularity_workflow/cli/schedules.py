"""CLI group ``schedules``: list, show, create, delete, enable, disable, trigger.

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. Each command is one call of
a client schedule method (one SQL function each). Errors (ScheduleNotFound, InvalidCron,
UnknownTimeZone ...) are left to the group, which prints them as one ``error:`` line.

Output: ``list`` prints a table of schedules with their next and last fire (``--json`` for
scripts); ``show`` the schedule and its next fire times; ``trigger`` only the new run id, so
that it composes (``run=$(singularity-workflow schedules trigger nightly)``).
"""

from __future__ import annotations

import json
from typing import Any

import click

from singularity_workflow._types import ScheduleInfo
from singularity_workflow.cli._base import client_of, dump, table

__all__ = ["schedules_group"]


def _when(value: Any) -> str | None:
    """Format a timestamp for a table cell (seconds precision), None as is."""
    return None if value is None else value.isoformat(" ", "seconds")


def _as_dict(info: ScheduleInfo) -> dict[str, Any]:
    """Return a schedule as JSON-ready data."""
    return {name: getattr(info, name) for name in info.__slots__}


def _find(ctx: click.Context, name: str) -> ScheduleInfo:
    """Return the schedule called ``name``; ScheduleNotFound (from the server) if none."""
    client = client_of(ctx)
    for info in client.list_schedules():
        if info.schedule_name == name:
            return info
    client.next_fire_times(name, 1)  # raises ScheduleNotFound (WF029)
    raise AssertionError("unreachable: the schedule exists after all")


@click.group("schedules", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def schedules_group(ctx: click.Context, as_json: bool) -> None:
    """List schedules with their next and last fire (the default), or manage one."""
    if ctx.invoked_subcommand is not None:
        return
    found = client_of(ctx).list_schedules()
    if as_json:
        click.echo(dump([_as_dict(s) for s in found]))
        return
    if not found:
        click.echo("no schedules")
        return
    headers = ("name", "flow", "cron", "timezone", "enabled", "next fire", "last fire", "last run")
    rows = [
        (
            s.schedule_name,
            s.flow_slug,
            s.cron,
            s.timezone,
            "yes" if s.enabled else "no",
            _when(s.next_fire_at),
            _when(s.last_fired_at),
            s.last_run_state if s.last_error is None else f"error: {s.last_error}",
        )
        for s in found
    ]
    click.echo(table(headers, rows))


@schedules_group.command("show")
@click.argument("name")
@click.option("-n", "count", type=int, default=5, show_default=True, help="Next fire times.")
@click.pass_context
def show_command(ctx: click.Context, name: str, count: int) -> None:
    """Print a schedule and its next fire times."""
    info = _find(ctx, name)
    data = _as_dict(info)
    data["next_fire_times"] = client_of(ctx).next_fire_times(name, count)
    click.echo(dump(data))


@schedules_group.command("create")
@click.argument("name")
@click.argument("flow")
@click.argument("cron")
@click.option("--input", "input_json", default="{}", show_default=True, help="Run input (JSON).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option(
    "--missed",
    type=click.Choice(["skip", "once", "each"]),
    default="skip",
    show_default=True,
    help="What missed ticks do.",
)
@click.option("--max-catch-up", type=int, default=10, show_default=True, help="For --missed each.")
@click.pass_context
def create_command(
    ctx: click.Context,
    name: str,
    flow: str,
    cron: str,
    input_json: str,
    timezone: str,
    missed: str,
    max_catch_up: int,
) -> None:
    """Create schedule NAME starting runs of FLOW on CRON (5 fields or @daily ...)."""
    try:
        value = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--input") from exc
    first = client_of(ctx).create_schedule(
        name,
        flow,
        cron,
        value,
        timezone=timezone,
        missed=missed,  # type: ignore[arg-type]  # click.Choice checked it
        max_catch_up=max_catch_up,
    )
    click.echo(f"schedule {name} created; first fire {_when(first)}")


@schedules_group.command("delete")
@click.argument("name")
@click.pass_context
def delete_command(ctx: click.Context, name: str) -> None:
    """Delete a schedule (the runs it started stay)."""
    deleted = client_of(ctx).delete_schedule(name)
    click.echo(f"schedule {name} {'deleted' if deleted else 'did not exist'}")


@schedules_group.command("enable")
@click.argument("name")
@click.pass_context
def enable_command(ctx: click.Context, name: str) -> None:
    """Enable a schedule; its next tick is the first after now."""
    next_fire = client_of(ctx).enable_schedule(name)
    click.echo(f"schedule {name} enabled; next fire {_when(next_fire)}")


@schedules_group.command("disable")
@click.argument("name")
@click.pass_context
def disable_command(ctx: click.Context, name: str) -> None:
    """Disable a schedule: it fires nothing until enabled."""
    client_of(ctx).disable_schedule(name)
    click.echo(f"schedule {name} disabled")


@schedules_group.command("trigger")
@click.argument("name")
@click.pass_context
def trigger_command(ctx: click.Context, name: str) -> None:
    """Start a run of a schedule now; print its run id."""
    click.echo(str(client_of(ctx).trigger_schedule(name)))
