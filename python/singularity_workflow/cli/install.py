"""CLI commands for the schema and the definitions in it: ``migrate``, ``sql`` and ``flows``."""

from __future__ import annotations

import json

import click

from singularity_workflow._install import InstallError, render_install_sql, render_upgrade_sql
from singularity_workflow.cli._base import client_of, table

__all__ = ["flows_command", "migrate_command", "sql_command"]


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="List the pending migrations; change nothing.")
@click.pass_context
def migrate_command(ctx: click.Context, dry_run: bool) -> None:
    """Install or upgrade the schema (pgmq, migrations, functions); safe to run again."""
    # Errors (the server's message names the failing migration or function) are shown by the
    # group as one line; a traceback would only bury them.
    names = client_of(ctx).install(dry_run=dry_run)
    if dry_run:
        click.echo("pending migrations: " + (", ".join(names) if names else "none"))
    else:
        click.echo("applied migrations: " + (", ".join(names) if names else "none (up to date)"))
        click.echo("functions reloaded")


@click.command("sql")
@click.option("--no-pgmq", is_flag=True, help="Leave out pgmq (when it is installed separately).")
@click.option(
    "--upgrade-from",
    metavar="RELEASE",
    default=None,
    help="Print the upgrade of a database at RELEASE (e.g. 0.1.0) instead of a full install.",
)
def sql_command(no_pgmq: bool, upgrade_from: str | None) -> None:
    """Print the whole install as one SQL script for `psql -v ON_ERROR_STOP=1 -f`."""
    if upgrade_from is None:
        click.echo(render_install_sql(include_pgmq=not no_pgmq), nl=False)
        return
    try:
        click.echo(render_upgrade_sql(upgrade_from), nl=False)
    except InstallError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("flows")
@click.argument("slug", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def flows_command(ctx: click.Context, slug: str | None, as_json: bool) -> None:
    """List the registered flows, or with SLUG show that flow's steps."""
    db = client_of(ctx)
    if slug is None:
        listed = db.list_flows()
        if as_json:
            click.echo(json.dumps(listed, indent=2, default=str))
        elif not listed:
            click.echo("no flows registered")
        else:
            rows = [
                (f["slug"], f["steps"], f["timeout"], f["created_at"].isoformat(" ", "seconds"))
                for f in listed
            ]
            click.echo(table(("slug", "steps", "timeout", "created_at"), rows))
        return
    flow = db.get_flow(slug)
    if as_json:
        click.echo(json.dumps(flow, indent=2))
        return
    click.echo(f"flow {flow['slug']} (timeout: {flow['timeout'] or '-'})")
    step_rows = [
        (
            s["slug"],
            ", ".join(s["depends_on"]) or None,
            s["type"] if s["type"] == "single" else f"map({s['map_over'] or 'input'})",
            s["execution"],
            s["queue"],
            ", ".join(s["resources"]) or None,
            s["max_attempts"],
            s["timeout"],
        )
        for s in flow["steps"]
    ]
    headers = ("step", "depends_on", "type", "execution", "queue", "resources", "attempts")
    click.echo(table((*headers, "timeout"), step_rows))
