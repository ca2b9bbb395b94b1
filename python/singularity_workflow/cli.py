"""Command-line interface: ``singularity-workflow <command>``.

A click group, so that each area of the engine adds its own commands to ``main``. Commands take
the database from ``--database-url`` or the ``DATABASE_URL`` environment variable.
"""

from __future__ import annotations

import click
import psycopg

from singularity_workflow import __version__
from singularity_workflow._install import InstallError, install, render_install_sql


@click.group()
@click.version_option(__version__, prog_name="singularity-workflow")
def main() -> None:
    """Drive the singularity-workflow engine that lives in PostgreSQL."""


@main.command()
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    required=True,
    help="libpq connection string or URL of the target database [env: DATABASE_URL].",
)
@click.option("--dry-run", is_flag=True, help="List the pending migrations; change nothing.")
def migrate(database_url: str, dry_run: bool) -> None:
    """Install or upgrade the schema (pgmq, migrations, functions); safe to run again."""
    try:
        names = install(database_url, dry_run=dry_run)
    except (InstallError, psycopg.Error) as exc:
        # The server's message already names the failing migration or function; a traceback
        # would only bury it.
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        click.echo("pending migrations: " + (", ".join(names) if names else "none"))
    else:
        click.echo("applied migrations: " + (", ".join(names) if names else "none (up to date)"))
        click.echo("functions reloaded")


@main.command("sql")
@click.option("--no-pgmq", is_flag=True, help="Leave out pgmq (when it is installed separately).")
def sql_command(no_pgmq: bool) -> None:
    """Print the whole install as one SQL script for `psql -v ON_ERROR_STOP=1 -f`."""
    click.echo(render_install_sql(include_pgmq=not no_pgmq), nl=False)


if __name__ == "__main__":
    main()
