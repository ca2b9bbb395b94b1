"""The :class:`StepContext` a handler may ask for: which attempt it runs, and what it may do.

A handler that declares a second parameter (or a keyword-only one annotated ``StepContext``,
see ``definitions._signature``) receives one per attempt, built by the engine from the claimed
task. Most fields come from the claim itself and cost nothing. ``version``, ``version_hash``
and ``deadline`` are not in the claim: the first read of any of them calls ``get_run_status``
once for the attempt (one query) and keeps the answer.

``heartbeat()`` extends the attempt's lease now through ``renew_leases`` (a long step that
knows it is alive need not wait for the lease thread), on the client's connection rules (a pool
connection or a fresh one, never the engine's own). ``cancelled`` is what the lease renewals
learned: the database refuses to renew the lease of a task whose run was cancelled or failed
(or that was claimed again after an expiry), the lease thread then marks it abandoned, and from
then on ``cancelled`` is true. Each renewal also says whether the run is paused: while it is,
``cancelled`` (and ``paused``) read true as well, so a long handler can stop early; the lease
is still extended, and a result the handler returns anyway is kept (a paused run's running
tasks may finish). A resume clears ``paused`` at the next renewal; an ended run stays
``cancelled``. Renewals come every ``lease_seconds * lease_renew_fraction`` seconds (or at a
``heartbeat()``), so a pause is seen within that time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any
from uuid import UUID

from singularity_workflow._client import ClaimedTask, Client
from singularity_workflow._types import RunStatus
from singularity_workflow.worker._state import InFlight

__all__ = ["StepContext"]

_step_log = logging.getLogger("singularity_workflow.step")


class _StepLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that prefixes each message with ``run/step#attempt`` and adds them as extras."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Prefix the message and merge the context's fields into ``extra``."""
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[{extra['run_id']} {extra['step_slug']}#{extra['attempt']}] {msg}", kwargs


class StepContext:
    """What a handler knows about the attempt it runs, and what it may do (see the module doc).

    ``run_id``, ``flow_slug``, ``step_slug``, ``attempt`` (1 for the first), ``map_index``
    (the element's index for a map step, None for a single step), ``lease_seconds``;
    ``version`` / ``version_hash`` / ``deadline`` (the run's ``deadline_at``, None without a
    flow timeout) are read lazily; ``logger`` is bound to run, step and attempt.
    """

    def __init__(self, client: Client, entry: InFlight, *, is_map: bool) -> None:
        task: ClaimedTask = entry.task
        self._client = client
        self._entry = entry
        self._status: RunStatus | None = None
        self.run_id: UUID = task.run_id
        self.flow_slug: str = task.flow_slug
        self.step_slug: str = task.step_slug
        self.attempt: int = task.attempt
        self.task_id: int = task.task_id
        self.map_index: int | None = task.task_index if is_map else None
        self.logger: logging.LoggerAdapter = _StepLogger(  # type: ignore[type-arg]
            _step_log,
            {"run_id": str(task.run_id), "flow_slug": task.flow_slug,
             "step_slug": task.step_slug, "attempt": task.attempt},
        )

    def __repr__(self) -> str:
        return (f"StepContext(run_id={self.run_id}, flow_slug={self.flow_slug!r},"
                f" step_slug={self.step_slug!r}, attempt={self.attempt},"
                f" map_index={self.map_index})")

    @property
    def lease_seconds(self) -> int:
        """How long each lease extension lasts (the step's timeout when known)."""
        return self._entry.lease_seconds

    def _run(self) -> RunStatus:
        if self._status is None:
            self._status = self._client.get_run_status(self.run_id)
        return self._status

    @property
    def version(self) -> int | None:
        """The number of the flow version the run is pinned to (one lookup, then cached)."""
        return self._run().version

    @property
    def version_hash(self) -> str | None:
        """The shape hash of the run's flow version (one lookup, then cached)."""
        return self._run().version_hash

    @property
    def deadline(self) -> datetime | None:
        """When the run times out (its flow's ``timeout``), or None (one lookup, then cached)."""
        return self._run().deadline_at

    @property
    def cancelled(self) -> bool:
        """True once a renewal was refused (the run ended), or while the run is paused."""
        return self._entry.abandoned or self._entry.run_paused

    @property
    def paused(self) -> bool:
        """True while the last lease renewal found the run paused (a resume clears it)."""
        return self._entry.run_paused

    def heartbeat(self) -> bool:
        """Extend this attempt's lease by ``lease_seconds`` now; False if it is no longer ours.

        A refusal also sets ``cancelled`` (the engine then discards the attempt's result); a
        paused run's lease is extended (True) and ``paused``/``cancelled`` read true.
        """
        verdict = self._client.renew_leases([(self.task_id, self.attempt)],
                                            self._entry.lease_seconds).get(self.task_id)
        ok = verdict is not None and verdict.extended
        self._entry.run_paused = verdict is not None and verdict.run_paused
        if ok:
            # The lease thread need not renew again before the next regular interval.
            self._entry.next_renewal = max(
                self._entry.next_renewal,
                time.monotonic() + self._entry.lease_seconds / 2)
        else:
            self._entry.abandoned = True
        return ok

    def send_with_notify(self, channel: str, message: Any) -> int:
        """Send ``message`` on ``channel`` and notify its listeners; return the message id."""
        return self._client.send_with_notify(channel, message)
