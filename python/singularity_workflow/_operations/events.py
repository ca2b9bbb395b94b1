"""Operations on events: send one to the wait step of a run, approve or reject a wait step.

A wait step (``@step(wait_for="name")``) completes when ``workflow.send_event`` delivers an
event with its run's key; ``approve`` / ``reject`` answer a named wait step of a run. Each
returns the server's report: ``{"status": "delivered", "run_id", "step"}`` or, when no step
waits yet, ``{"status": "kept", "event_id", "expires_at"}`` (docs/control-flow.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from singularity_workflow._db import Operation, clean_text, first_value, to_jsonb
from singularity_workflow._operations._args import need_text, need_type
from singularity_workflow._types import run_uuid

__all__ = ["approve", "reject", "send_event"]


def send_event(
    name: str, key: UUID | str, payload: Any = None, *, keep: timedelta | float | None = None
) -> Operation[dict[str, Any]]:
    """Send event ``name`` for ``key`` (a run id, or the input value its wait step names).

    ``keep``: how long an event nobody waits for yet is kept (seconds or a timedelta; the
    server's default is one day).
    """
    need_text(name, "name")
    if isinstance(key, UUID):
        key = str(key)
    need_text(key, "key")
    if keep is not None:
        need_type(keep, "keep", (timedelta, int, float), "a timedelta or a number of seconds")
        keep = keep if isinstance(keep, timedelta) else timedelta(seconds=float(keep))
    return Operation(
        "select workflow.send_event(event_name => %s, event_key => %s, payload => %s, keep => %s)",
        [clean_text(name), clean_text(key), to_jsonb(payload), keep],
        first_value,
    )


def _text(value: str | None) -> str | None:
    """``clean_text`` for an optional value."""
    return None if value is None else clean_text(value)


def _answer(
    kind: str, run_id: UUID | str, step: str, by: str | None, comment: str | None
) -> Operation[dict[str, Any]]:
    """Check the arguments of approve / reject (``kind``); return its operation."""
    need_text(step, "step")
    need_text(by, "by", optional=True)
    need_text(comment, "comment", optional=True)
    return Operation(
        f"select workflow.{kind}(run_id => %s, step_slug => %s, decided_by => %s, comment => %s)",
        [run_uuid(run_id), step, _text(by), _text(comment)],
        first_value,
    )


def approve(
    run_id: UUID | str, step: str, by: str | None = None, comment: str | None = None
) -> Operation[dict[str, Any]]:
    """Approve wait step ``step`` of a run: its output becomes ``{"approved": true, ...}``."""
    return _answer("approve", run_id, step, by, comment)


def reject(
    run_id: UUID | str, step: str, by: str | None = None, comment: str | None = None
) -> Operation[dict[str, Any]]:
    """Reject wait step ``step`` of a run: its output becomes ``{"approved": false, ...}``."""
    return _answer("reject", run_id, step, by, comment)
