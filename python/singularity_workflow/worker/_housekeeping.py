"""A worker's housekeeping (``workflow.maintain``) on a thread and a connection of its own.

``maintain`` sweeps (dead workers, dead owners, deadlines) and ANALYZEs the hot tables when
their statistics went stale. ANALYZE of four tables can take tens of milliseconds, and much
longer when it waits for a lock (another session's ANALYZE or VACUUM of the same table holds
one it needs). It used to run on the claim loop's poll tick, so the loop claimed and flushed
nothing while it ran: an outside harness measured the claim's p99 at 39 ms with it there, 7.4 ms
without. Here it runs beside the loop, never on its path:

* its own daemon thread, every ``interval`` seconds (the worker's ``poll_interval``);
* its own connection, opened at the first tick and reopened after a failure, so it holds
  neither the loop connection nor the client's shared one (which the heartbeat and the
  handlers' ``heartbeat()`` calls use);
* one call at a time: a tick that comes while the previous call still runs is skipped, not
  queued, so a slow ANALYZE never piles up calls.

Before each call it runs ``before`` (the worker re-registers there when workflows were defined
since it registered), and after a call that succeeded ``after`` with its result (the worker
starts the VACUUMs ``maintain`` advised there). A failure is logged and retried on the next
tick; it never stops the worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from singularity_workflow._client import Client
from singularity_workflow._operations import runs

__all__ = ["Housekeeper"]

log = logging.getLogger("singularity_workflow.worker")


class Housekeeper:
    """Call ``workflow.maintain`` every ``interval`` seconds off the claim loop (module doc)."""

    def __init__(self, client: Client, interval: float, *, worker_id: str,
                 before: Callable[[], None] | None = None,
                 after: Callable[[dict[str, Any]], None] | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.client = client
        self.interval = interval
        self.worker_id = worker_id
        self.before = before
        self.after = after
        #: Completed ``maintain`` calls (for tests and diagnosis).
        self.calls = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; its first call comes one interval from now."""
        self._thread = threading.Thread(target=self._loop, name=f"sw-maintain-{self.worker_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking; wait up to ``timeout`` for a call in progress, then close the connection.

        A call still running after that (an ANALYZE waiting for a lock) is left to the daemon
        thread, which closes its connection when the call returns.
        """
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                return
        self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection must not raise
                pass

    def _loop(self) -> None:
        # The thread runs one call at a time, so a tick that falls inside a slow call is simply
        # not taken: the wait restarts after the call.
        while not self._stopped.wait(self.interval):
            self.tick()
        self._close()

    def tick(self) -> dict[str, Any] | None:
        """Run ``before`` and one ``maintain`` call now; None if it failed (logged)."""
        try:
            if self.before is not None:
                self.before()
            if self._conn is None or self._conn.closed:
                self._conn = self.client.connect_dedicated()
            result = self.client.call(runs.maintain(), conn=self._conn)
        except Exception as exc:  # an outage: the loop's reconnect logic reports those
            log.debug("worker %s: maintain failed: %s", self.worker_id, exc)
            self._close()
            return None
        self.calls += 1
        if result.get("cancelled_runs"):
            log.info("worker %s: cancelled %d run(s) past their deadline",
                     self.worker_id, result["cancelled_runs"])
        if self.after is not None:
            try:
                self.after(result)
            except Exception as exc:  # housekeeping only: never stops the worker
                log.debug("worker %s: after maintain failed: %s", self.worker_id, exc)
        return result
