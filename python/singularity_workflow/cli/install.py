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
@click.option("--versions", is_flag=True, help="With SLUG: list its versions with run counts.")
@click.option("--version", "version", type=int, default=None, metavar="N",
              help="With SLUG: show version N's steps (default: the current version).")
@click.pass_context
def flows_command(
    ctx: click.Context, slug: str | None, as_json: bool, versions: bool, version: int | None
) -> None:
    """List the registered flows, or with SLUG show that flow's steps (or its versions)."""
    db = client_of(ctx)
    if slug is None and (versions or version is not None):
        raise click.UsageError("--versions and --version need a flow SLUG")
    if slug is not None and versions:
        listed_versions = db.list_flow_versions(slug)
        if as_json:
            click.echo(json.dumps([
                {f: getattr(v, f) for f in v.__slots__} for v in listed_versions
            ], indent=2, default=str))
            return
        click.echo(table(
            ("version", "shape_hash", "current", "created_at", "retired_at", "live_runs", "runs"),
            [
                (v.version, v.shape_hash, "yes" if v.is_current else None,
                 v.created_at.isoformat(" ", "seconds"),
                 v.retired_at.isoformat(" ", "seconds") if v.retired_at else None,
                 v.live_runs, v.total_runs)
                for v in listed_versions
            ],
        ))
        return
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
    flow = db.get_flow(slug, version)
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
