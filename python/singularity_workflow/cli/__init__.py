"""Command line: ``singularity-workflow <command>``, or ``python -m singularity_workflow``.

One click group, ``main``, and one module per concern, each holding its commands: ``install``
(migrate, sql, flows), ``lifecycle`` (status, runs, cancel, pause, resume, retry), ``worker``
(worker, workers, run), ``messaging`` (send, listen, notify), ``schedules`` (the schedules
group), ``goal`` (the goal orchestrator's group), ``limits`` (concurrency and rate limits) and
``dashboard``. What they share (the group's error format, the one ``--database-url`` option, the
client in the click context, table and JSON output) is in ``_base``. Nothing else in the package
imports this one.
"""

from __future__ import annotations

import click

from singularity_workflow import __version__
from singularity_workflow._demo import demo_command
from singularity_workflow._logging import FORMATS
from singularity_workflow._logging import configure as configure_logging
from singularity_workflow.cli._base import CliError, CliGroup, add_database_option
from singularity_workflow.cli.dashboard import dashboard_command
from singularity_workflow.cli.events import EVENT_COMMANDS
from singularity_workflow.cli.goal import goal_group
from singularity_workflow.cli.install import flows_command, migrate_command, sql_command
from singularity_workflow.cli.lifecycle import LIFECYCLE_COMMANDS
from singularity_workflow.cli.limits import limits_group
from singularity_workflow.cli.messaging import listen_command, notify_command, send_command
from singularity_workflow.cli.schedules import schedules_group
from singularity_workflow.cli.worker import (
    metrics_command,
    run_command,
    worker_command,
    workers_command,
)

__all__ = ["CliError", "main"]


@click.group(cls=CliGroup)
@click.version_option(__version__, prog_name="singularity-workflow")
@click.option("--log-format", type=click.Choice(FORMATS), default="text", show_default=True,
              envvar="SINGULARITY_WORKFLOW_LOG_FORMAT",
              help="Log lines as text, key=value (kv) or JSON, on stderr.")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="The least severe level logged (the worker command has its own, INFO).")
@click.pass_context
def main(ctx: click.Context, log_format: str, log_level: str) -> None:
    """Drive the singularity-workflow engine that lives in PostgreSQL."""
    ctx.meta["log_format"] = log_format
    configure_logging(log_level, log_format)


for _command in (
    migrate_command,
    sql_command,
    flows_command,
    worker_command,
    workers_command,
    metrics_command,
    run_command,
    *LIFECYCLE_COMMANDS,
    *EVENT_COMMANDS,
    goal_group,
    limits_group,
    schedules_group,
    send_command,
    listen_command,
    notify_command,
    demo_command,
    dashboard_command,
):
    main.add_command(_command)
# Last, so that the group and every command added above carry the option.
add_database_option(main)


if __name__ == "__main__":
    main()
