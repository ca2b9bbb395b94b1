"""The control-flow options of one step, checked in Python: wait steps and sleeps.

A step with ``wait_for`` is a wait step: it runs no handler, completes when the event it names
arrives with the run's key (``event_key``: ``"run_id"``, the default, or ``"input.<field>..."``)
and has the event's payload as its output (``send_event``, ``approve``, ``reject``); with
``wait_timeout`` (seconds) it fails when nothing came by then. ``sleep`` (whole seconds, or a
path ``input.<field>...`` / ``<dependency>.<field>...`` read when the step starts: seconds or
a timestamp) delays a step's tasks without holding a worker. The server is the authority
(``workflow._normalize_step``) and repeats each check; these run at definition so a class fails
at import. docs/control-flow.md describes the options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from singularity_workflow._errors import DefinitionError
from singularity_workflow.definitions._rules import EVENT_KEY, EVENT_NAME, INT_MAX, SLEEP_PATH

__all__ = ["WAIT_PLACEMENT", "control_options"]

#: What a wait step is placed as: it never has a task, so no process needs to own it.
WAIT_PLACEMENT: dict[str, Any] = {"execution": "distributed", "queue": "default"}


def _fail(flow: str, name: str, message: str, hint: str | None = None) -> DefinitionError:
    """Build a WF010 naming the flow and the step."""
    return DefinitionError(f"flow {flow}, step {name}: {message}", code="WF010", hint=hint)


def control_options(
    flow: str, name: str, options: Mapping[str, Any], deps: Sequence[str]
) -> dict[str, Any]:
    """Check the step's control-flow options (as given, not defaulted); return them normalised.

    The result has ``wait_for``, ``event_key`` and (when given) ``wait_timeout`` for a wait
    step, ``sleep`` for a sleeping one, ``condition`` and ``run_if_skipped`` (only when true)
    when given, and nothing for a plain step, so its shape is unchanged.
    A wait step must not be given ``execution``, ``queue``, ``resources``, ``map`` or ``sleep``.
    """
    out: dict[str, Any] = {}
    wait_for = options.get("wait_for")
    if wait_for is not None:
        if not isinstance(wait_for, str) or not EVENT_NAME.fullmatch(wait_for):
            raise _fail(flow, name, f"wait_for must be an event name, got {wait_for!r}",
                        'Name the event the step waits for: wait_for="approval".')
        placed = sorted(
            k for k in ("execution", "queue", "resources", "map", "sleep")
            if options.get(k) not in (None, (), [], False)
        )
        if placed:
            raise _fail(flow, name, f"a wait step cannot take {', '.join(placed)}",
                        "A wait step runs no handler; put these options on the step after it.")
        key = options.get("event_key") or "run_id"
        if not isinstance(key, str) or not EVENT_KEY.fullmatch(key):
            raise _fail(flow, name, f"event_key must be run_id or input.<field>..., got {key!r}")
        out = {"wait_for": wait_for, "event_key": key}
        timeout = options.get("wait_timeout")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
                raise _fail(flow, name, f"wait_timeout must be an integer >= 1, got {timeout!r}")
            if timeout > INT_MAX:
                raise _fail(flow, name, f"wait_timeout must be at most {INT_MAX}")
            out["wait_timeout"] = timeout
    else:
        given = sorted(k for k in ("event_key", "wait_timeout") if options.get(k) is not None)
        if given:
            raise _fail(flow, name, f"{', '.join(given)} need wait_for (only a wait step waits)")
    sleep = options.get("sleep")
    if sleep is not None:
        if isinstance(sleep, bool) or not (
            (isinstance(sleep, int) and 0 <= sleep <= INT_MAX)
            or (isinstance(sleep, str) and SLEEP_PATH.fullmatch(sleep))
        ):
            raise _fail(flow, name, f"sleep must be whole seconds or a path, got {sleep!r}",
                        'Examples: sleep=30, sleep="input.remind_at", sleep="fetch.retry_after".')
        if isinstance(sleep, str) and sleep.split(".")[0] not in ("input", *deps):
            raise _fail(flow, name, f"sleep path {sleep} is not input.<f> or <dependency>.<f>")
        out["sleep"] = sleep
    condition = options.get("condition")
    if condition is not None:
        # Its grammar is the server's (workflow._check_condition, WF036 / WF037): only its type
        # is checked here, so the rules live in one place.
        if not isinstance(condition, Mapping):
            raise DefinitionError(
                f"flow {flow}, step {name}: condition must be a dict, got {condition!r}",
                code="WF036",
                hint='Example: {"path": "review.approved", "op": "eq", "value": True}.',
            )
        out["condition"] = condition
    skipped = options.get("run_if_skipped", False)
    if not isinstance(skipped, bool):
        raise _fail(flow, name, f"run_if_skipped must be True or False, got {skipped!r}")
    if skipped:
        out["run_if_skipped"] = True
    return out
