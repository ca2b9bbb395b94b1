"""CLI command ``dashboard``: serve the web dashboard (runs, DAG progress, actions, queues).

Added to the ``singularity-workflow`` group by ``cli/__init__.py``. It needs the ``dashboard`` extra
(Starlette, uvicorn, Jinja2); without it the command says how to install it instead of failing
with an import error. It binds to 127.0.0.1 by default and refuses any other address unless the
dashboard has a ``--token`` or is ``--read-only``, since whoever reaches it could cancel runs.
"""

from __future__ import annotations

import click

from singularity_workflow.cli._base import client_of

__all__ = ["dashboard_command"]


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --token or --read-only.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port to listen on.")
@click.option("--token", envvar="SW_DASHBOARD_TOKEN", default=None, metavar="TOKEN",
              help="Require this token (open /?token=TOKEN once, or send a Bearer header)"
                   " [env: SW_DASHBOARD_TOKEN].")
@click.option("--read-only", is_flag=True, help="Show everything, allow no action.")
@click.pass_context
def dashboard_command(ctx: click.Context, host: str, port: int, token: str | None,
                      read_only: bool) -> None:
    """Serve the live web dashboard of runs, queues and channels."""
    try:
        import uvicorn

        from singularity_workflow.dashboard import UnsafeBind, check_bind, create_app
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs its extra ({exc.name} is missing):"
            " pip install 'singularity-workflow[dashboard]'"
        ) from exc
    try:
        config = check_bind(host, token=token, read_only=read_only)
    except UnsafeBind as exc:
        raise click.UsageError(str(exc)) from exc
    conninfo = client_of(ctx).conninfo
    if conninfo is None:
        raise click.ClickException("no database given: pass --database-url or set DATABASE_URL")
    app = create_app(conninfo, config)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"dashboard on http://{shown}:{port}/"
               + (" (read-only)" if read_only else "") + (" (token required)" if token else ""),
               err=True)
    # Open SSE streams would hold a graceful shutdown forever; give them two seconds.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
