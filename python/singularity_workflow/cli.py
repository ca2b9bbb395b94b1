"""Command line: ``singularity-workflow <command>``, or ``python -m singularity_workflow``.

A click group, so that each area of the engine adds its own commands to ``main``. The database
comes from the group's ``--database-url`` or the ``DATABASE_URL`` environment variable; the
group puts a ``Client`` over it in the click context (``ctx.obj``), where commands find it.
Building that client does no I/O, so ``sql`` and ``--help`` work without a database.

Every failure a user can cause (a bad URL, an unknown flow, a WF SQLSTATE from the server) ends
the same way: ``error: <message> (SQLSTATE <code>)`` on stderr, a ``hint:`` line when there is
one, and exit status 1; never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

import click
import psycopg

from singularity_workflow import __version__
from singularity_workflow._client import Client
from singularity_workflow._errors import WorkflowError
from singularity_workflow._install import InstallError, render_install_sql, render_upgrade_sql


class CliError(click.ClickException):
    """A failure shown as ``error: ...`` (plus an optional ``hint: ...`` line), exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the message to stderr, in our format rather than click's ``Error:``."""
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _describe_psycopg(exc: psycopg.Error) -> str:
    """One line for a psycopg error (plus a hint line), without libpq's multi-line noise."""
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        # A connection failure: libpq's first line says what failed, the rest is advice.
        first, _, rest = str(exc).strip().partition("\n")
        advice = " ".join(part.strip() for part in rest.splitlines() if part.strip())
        text = f"cannot connect to the database: {first}"
        return f"{text}\nhint: {advice}" if advice else text
    message = exc.diag.message_primary or str(exc).strip().partition("\n")[0]
    text = f"{message} (SQLSTATE {exc.sqlstate})" if exc.sqlstate else message
    return f"{text}\nhint: {exc.diag.message_hint}" if exc.diag.message_hint else text


class _Group(click.Group):
    """The command group; turns every expected failure into one ``error:`` line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, translating our errors (and other commands' ClickExceptions)."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.UsageError, CliError):
            raise
        except click.ClickException as exc:
            raise CliError(exc.format_message()) from exc
        except WorkflowError as exc:
            raise CliError(exc.describe()) from exc
        except psycopg.Error as exc:
            raise CliError(_describe_psycopg(exc)) from exc
        except InstallError as exc:
            raise CliError(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="singularity-workflow")
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    metavar="URL",
    help="libpq connection string or URL of the database [env: DATABASE_URL].",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """Drive the singularity-workflow engine that lives in PostgreSQL."""
    ctx.obj = Client(database_url)


def _client(ctx: click.Context) -> Client:
    """Return the client the group put in the context."""
    client = ctx.find_object(Client)
    return client if client is not None else Client()


@main.command()
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    metavar="URL",
    help="Same as the group's option, accepted here too [env: DATABASE_URL].",
)
@click.option("--dry-run", is_flag=True, help="List the pending migrations; change nothing.")
@click.pass_context
def migrate(ctx: click.Context, database_url: str | None, dry_run: bool) -> None:
    """Install or upgrade the schema (pgmq, migrations, functions); safe to run again."""
    client = Client(database_url) if database_url else _client(ctx)
    # Errors (the server's message names the failing migration or function) are shown by the
    # group as one line; a traceback would only bury them.
    names = client.install(dry_run=dry_run)
    if dry_run:
        click.echo("pending migrations: " + (", ".join(names) if names else "none"))
    else:
        click.echo("applied migrations: " + (", ".join(names) if names else "none (up to date)"))
        click.echo("functions reloaded")


@main.command("sql")
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a plain, left-aligned text table (None shows as '-')."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


@main.command()
@click.argument("slug", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def flows(ctx: click.Context, slug: str | None, as_json: bool) -> None:
    """List the registered flows, or with SLUG show that flow's steps."""
    client = _client(ctx)
    if slug is None:
        listed = client.list_flows()
        if as_json:
            click.echo(json.dumps(listed, indent=2, default=str))
        elif not listed:
            click.echo("no flows registered")
        else:
            rows = [
                (f["slug"], f["steps"], f["timeout"], f["created_at"].isoformat(" ", "seconds"))
                for f in listed
            ]
            click.echo(_table(("slug", "steps", "timeout", "created_at"), rows))
        return
    flow = client.get_flow(slug)
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
    click.echo(_table((*headers, "timeout"), step_rows))


def _add_worker_commands() -> None:
    """Add the commands that run (worker, run) and control runs (status, runs, cancel ...)."""
    from singularity_workflow._cli_lifecycle import LIFECYCLE_COMMANDS
    from singularity_workflow._cli_worker import run_command, worker_command

    for command in (worker_command, run_command, *LIFECYCLE_COMMANDS):
        main.add_command(command)


_add_worker_commands()


def _add_goal_commands() -> None:
    """Add the ``goal`` group (plan, show, approve, run task graphs) from its own module."""
    from singularity_workflow._cli_goal import goal_group

    main.add_command(goal_group)


_add_goal_commands()


def _add_messaging_commands() -> None:
    """Add the messaging commands (send, listen, notify) from their own module."""
    from singularity_workflow._cli_messaging import listen_command, notify_command, send_command

    for command in (send_command, listen_command, notify_command):
        main.add_command(command)


_add_messaging_commands()


def _add_demo_command() -> None:
    """Add ``demo`` (a first look on whatever PostgreSQL is at hand) from its own module."""
    from singularity_workflow._demo import demo_command

    main.add_command(demo_command)


_add_demo_command()


def _add_dashboard_command() -> None:
    """Add ``dashboard`` (the web UI; its imports wait until it runs) from its own module."""
    from singularity_workflow._cli_dashboard import dashboard_command

    main.add_command(dashboard_command)


_add_dashboard_command()


if __name__ == "__main__":
    main()
