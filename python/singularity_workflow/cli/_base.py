"""What every command of the CLI shares: the group, the error format, the database option.

The database comes from ``--database-url`` or the ``DATABASE_URL`` environment variable. The
option is written once (:func:`add_database_option`) and attached to the group and to every
command, so it may stand before or after the command's name
(``singularity-workflow status --database-url X ID``). Commands get their client from
:func:`client` (the one in the click context, ``ctx.obj``). Building a client does no I/O, so
``sql`` and ``--help`` work without a database.

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

from singularity_workflow._client import Client
from singularity_workflow._errors import WorkflowError
from singularity_workflow._install import InstallError

__all__ = [
    "CliError",
    "CliGroup",
    "add_database_option",
    "client_of",
    "dump",
    "table",
]

_DATABASE_HELP = "libpq connection string or URL of the database [env: DATABASE_URL]."


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


class CliGroup(click.Group):
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


def _use_database(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Put a client over ``value`` in this command's context (the group's: DATABASE_URL)."""
    if value is not None or ctx.parent is None:
        ctx.obj = Client(value)


def add_database_option(command: click.Command, *, root: bool = True) -> click.Command:
    """Attach the one ``--database-url`` option to ``command`` and, for a group, its commands.

    On the root group the option also reads ``DATABASE_URL``; on a command it only overrides
    what the group set, so the option may be given before or after the command's name.
    """
    if not any(p.name == "database_url" for p in command.params):
        command.params.append(
            click.Option(
                ["--database-url"],
                # Only the root reads the environment: a command's own option must not replace
                # a URL given before the command's name with DATABASE_URL.
                envvar="DATABASE_URL" if root else None,
                default=None,
                metavar="URL",
                expose_value=False,
                callback=_use_database,
                help=_DATABASE_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_database_option(sub, root=False)
    return command


def client_of(ctx: click.Context) -> Client:
    """Return the client of the command's context (see ``--database-url``)."""
    found = ctx.find_object(Client)
    return found if found is not None else Client()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a plain, left-aligned text table (None shows as '-')."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def dump(value: Any) -> str:
    """Render JSON for people and scripts alike (timestamps and ids as strings)."""
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)
