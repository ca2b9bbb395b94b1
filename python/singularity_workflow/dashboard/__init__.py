"""The web dashboard: runs, DAG progress, control actions, queues and channels, live.

``singularity-workflow dashboard`` serves it (see ``docs/dashboard.md``); an application can
mount it itself with :func:`create_app`. It needs the ``dashboard`` extra
(``pip install 'singularity-workflow[dashboard]'``: Starlette, uvicorn, Jinja2). Nothing here
keeps workflow state: every page reads the database through the client, every action is one
call of the engine's SQL functions, and the live feed is the engine's event log.
"""

from __future__ import annotations

import ipaddress

from singularity_workflow.dashboard._app import LOOPBACK_HOSTS, DashboardConfig, create_app
from singularity_workflow.dashboard._observe import metrics_families

__all__ = [
    "DashboardConfig", "UnsafeBind", "check_bind", "create_app", "is_loopback", "metrics_families",
]


class UnsafeBind(ValueError):
    """Binding to a non-loopback address without a token or read-only mode was refused."""


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is ``localhost`` or a loopback address addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, token: str | None, read_only: bool) -> DashboardConfig:
    """Return the configuration for serving on ``host``, or raise UnsafeBind.

    On loopback anything goes, and the Host header must be a loopback name (DNS rebinding).
    Elsewhere the dashboard is reachable by others, so it must have a token or be read-only;
    the Host header is then not restricted (the address people use is not known here).
    """
    if is_loopback(host):
        return DashboardConfig(token=token, read_only=read_only,
                               allowed_hosts=LOOPBACK_HOSTS | {host})
    if token is None and not read_only:
        raise UnsafeBind(
            f"refusing to serve on {host} without --token or --read-only: anyone who can reach"
            " it could cancel runs"
        )
    return DashboardConfig(token=token, read_only=read_only, allowed_hosts=None)
