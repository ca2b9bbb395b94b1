"""A process known to the database: register, heartbeat from a thread of its own, deregister.

Both users of the engine register: a :class:`~singularity_workflow.Worker` (its queues, its
resources, and the steps it has handlers for, so that ``claim_tasks`` with its id claims only
those) and ``execute`` (the owner of its run's local steps: when its heartbeat stops, the
engine's sweep fails the run). The heartbeat runs on its own thread, every third of the timeout,
never on the claim loop's path; ``heartbeat_worker`` answering false (the database declared this
process dead, say after a long pause) makes it register again before its next beat.

The calls go through the process's :class:`~singularity_workflow.Client` (its one connection,
shared and locked), so registering costs no connection of its own.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any, Final

from psycopg.types.json import Jsonb

from singularity_workflow._client import Client
from singularity_workflow._db import Operation, first_value

__all__ = ["DEFAULT_HEARTBEAT_TIMEOUT", "Registration", "package_version"]

log = logging.getLogger("singularity_workflow.worker")

#: Seconds without a heartbeat after which the engine counts a process as dead.
DEFAULT_HEARTBEAT_TIMEOUT: Final = 30

_REGISTER: Final = (
    "select workflow.register_worker(worker_id => %s, host => %s, pid => %s, queues => %s::text[],"
    " resources => %s::text[], handlers => %s, version => %s, heartbeat_timeout_seconds => %s)"
)
_HEARTBEAT: Final = "select workflow.heartbeat_worker(worker_id => %s)"
_DEREGISTER: Final = "select workflow.deregister_worker(worker_id => %s)"

#: {flow_slug: [step_slug, ...]} (any version) or {flow_slug: {shape_hash: [step_slug, ...]}}
#: (those versions): the steps a process can run (None: any step).
Handlers = Mapping[str, Sequence[str] | Mapping[str, Sequence[str]]]


def _plain(given: Handlers | None) -> dict[str, Any] | None:
    """Return ``given`` as plain JSON-ready dicts and lists (for comparison and sending)."""
    if given is None:
        return None
    return {
        flow: ({h: list(steps) for h, steps in served.items()} if isinstance(served, Mapping)
               else list(served))
        for flow, served in given.items()
    }


def package_version() -> str | None:
    """Return the installed version of singularity-workflow (None when not installed)."""
    try:
        return metadata.version("singularity-workflow")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return None


class Registration:
    """One process's row in ``workflow.workers`` and the thread that keeps it alive.

    ``handlers`` is called at every (re-)registration, so a worker that imported more
    workflows since advertises them the next time it registers.
    """

    def __init__(
        self,
        client: Client,
        worker_id: str,
        *,
        queues: Sequence[str],
        resources: Sequence[str] | None,
        handlers: Callable[[], Handlers | None],
        heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        if isinstance(heartbeat_timeout, bool) or not isinstance(heartbeat_timeout, int) or (
            heartbeat_timeout < 1
        ):
            raise ValueError(
                "heartbeat_timeout must be a whole number of seconds >= 1,"
                f" got {heartbeat_timeout!r}"
            )
        self._client = client
        self.worker_id = worker_id
        self._queues = list(queues)
        self._resources = list(resources or ())
        self._handlers = handlers
        self.heartbeat_timeout = heartbeat_timeout
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._registered: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def register(self) -> None:
        """Insert or refresh this process's row (``register_worker``); raises on failure."""
        with self._lock:
            handlers = _plain(self._handlers())
            self._client.call(Operation(
                _REGISTER,
                [self.worker_id, socket.gethostname(), os.getpid(), self._queues,
                 self._resources, None if handlers is None else Jsonb(handlers),
                 package_version(), self.heartbeat_timeout],
                first_value,
            ))
            self._registered = handlers

    def refresh(self) -> None:
        """Register again if the handlers changed since (a workflow defined after the start).

        Cheap when nothing changed (a comparison of two small dicts); the worker calls it on
        every poll tick, so a handler registered later is served within a poll interval.
        """
        if _plain(self._handlers()) != self._registered:
            self.register()

    def start(self) -> None:
        """Register now (raises if that fails), then heartbeat from a daemon thread."""
        self.register()
        self._thread = threading.Thread(target=self._beat, name=f"sw-heartbeat-{self.worker_id}",
                                        daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        """Heartbeat every third of the timeout; register again when the database forgot us."""
        period = self.heartbeat_timeout / 3
        while not self._stopped.wait(period):
            try:
                alive: Any = self._client.call(
                    Operation(_HEARTBEAT, [self.worker_id], first_value))
                if not alive:
                    log.warning("worker %s: the database counted this process as dead (no"
                                " heartbeat for %d s): registering again", self.worker_id,
                                self.heartbeat_timeout)
                    self.register()
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("worker %s: heartbeat failed: %s", self.worker_id, exc)

    def stop(self) -> None:
        """Stop heartbeating and deregister (its leases are released at once); never raises.

        A process that cannot deregister (the database is away) simply stops heartbeating:
        the engine counts it dead after the heartbeat timeout, with the same effect.
        """
        self._stopped.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self._client.call(Operation(_DEREGISTER, [self.worker_id], first_value))
        except Exception as exc:
            log.warning("worker %s: could not deregister (%s); the engine counts it dead after"
                        " %d s without a heartbeat", self.worker_id, exc, self.heartbeat_timeout)
