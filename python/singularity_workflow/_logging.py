"""Structured logs: key=value (logfmt) or JSON lines, each line about a task carrying its ids.

The package logs through the standard ``logging`` module under ``singularity_workflow.*``
(``.worker`` the claim loop and its threads, ``.step`` a handler's ``ctx.logger``, ``.cli`` the
commands). :func:`configure` installs one handler on the root logger with one of three formats:

* ``text``: ``time level logger: message`` (what a person reads in a terminal);
* ``kv``: logfmt, ``time=... level=info logger=... msg="..." run_id=... step=... attempt=2``;
* ``json``: one JSON object per line with the same keys.

A line is about a task when the code logging it passes :func:`task_fields` as ``extra`` (the
engine's lines about a task do), or when it is logged while a handler runs: the worker binds the
task's fields (:func:`bind`) around each handler call, so a handler's own ``logging`` calls get
``run_id``, ``flow``, ``step``, ``attempt`` and ``task_id`` too, in whatever thread or asyncio
task it runs. An application that configures logging itself can use :class:`KeyValueFormatter`
or :class:`JsonFormatter` on its own handlers.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

__all__ = [
    "FORMATS",
    "JsonFormatter",
    "KeyValueFormatter",
    "TASK_KEYS",
    "bind",
    "configure",
    "task_fields",
    "unbind",
]

#: The formats :func:`configure` knows.
FORMATS: Final = ("text", "kv", "json")
#: The keys a line about a task carries, in the order they are written.
TASK_KEYS: Final = ("run_id", "flow", "step", "attempt", "task_id", "worker_id", "queue")
# Other extras written when a record carries them (StepContext's logger names them so).
_ALIASES: Final = {"flow_slug": "flow", "step_slug": "step"}
_BOUND: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "singularity_workflow_task", default=None
)
# What logging.LogRecord has of its own: anything else on a record is an extra.
_RECORD_KEYS: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def task_fields(task: Any, **more: Any) -> dict[str, Any]:
    """Return the ``extra`` of a line about a claimed task (run_id, flow, step, attempt, task_id).

    ``task`` is anything with the attributes of a ``ClaimedTask``; ``more`` adds keys
    (``worker_id=``, ``queue=``).
    """
    fields = {"run_id": str(task.run_id), "flow": task.flow_slug, "step": task.step_slug,
              "attempt": task.attempt, "task_id": task.task_id}
    fields.update({k: v for k, v in more.items() if v is not None})
    return fields


def bind(fields: Mapping[str, Any]) -> contextvars.Token[Mapping[str, Any] | None]:
    """Make every line logged in this context (thread or asyncio task) carry ``fields``."""
    return _BOUND.set(fields)


def unbind(token: contextvars.Token[Mapping[str, Any] | None]) -> None:
    """Undo a :func:`bind`."""
    _BOUND.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the structured keys of a record: the bound task's, then the record's extras."""
    out: dict[str, Any] = dict(_BOUND.get() or {})
    for key, value in vars(record).items():
        if key in _RECORD_KEYS or key.startswith("_"):
            continue
        out[_ALIASES.get(key, key)] = value
    return out


def _ordered(fields: dict[str, Any]) -> list[tuple[str, Any]]:
    """Task keys first in TASK_KEYS order, then the rest by name."""
    head = [(k, fields[k]) for k in TASK_KEYS if k in fields]
    tail = sorted((k, v) for k, v in fields.items() if k not in TASK_KEYS)
    return head + tail


def _when(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _kv_value(value: Any) -> str:
    """Write a logfmt value: bare when it has no space, quote or equals sign, else quoted."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not any(c in text for c in ' "=\n\t\\'):
        return text
    return json.dumps(text)


class KeyValueFormatter(logging.Formatter):
    """logfmt: ``time=... level=... logger=... msg="..." key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Write the record as one logfmt line (an exception's traceback as ``exc=``)."""
        parts = [("time", _when(record)), ("level", record.levelname.lower()),
                 ("logger", record.name), ("msg", record.getMessage())]
        parts += _ordered(_fields(record))
        if record.exc_info:
            parts.append(("exc", self.formatException(record.exc_info)))
        return " ".join(f"{k}={_kv_value(v)}" for k, v in parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``msg``, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Write the record as one JSON object (an exception's traceback as ``exc``)."""
        out: dict[str, Any] = {"time": _when(record), "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        out.update(_ordered(_fields(record)))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _TextFormatter(logging.Formatter):
    """The plain format, with a task's ids appended as ``[run=... step=...#attempt]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Write the plain line, then the task it is about when there is one."""
        text = super().format(record)
        f = _fields(record)
        if "run_id" in f and "step" in f:
            text += f" [run={f['run_id']} step={f['step']}#{f.get('attempt', '?')}]"
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler writing to whatever ``sys.stderr`` is at each line.

    Not the stream of the moment it was made: a test runner (click's CliRunner, pytest's
    capture) swaps sys.stderr and closes its stand-in afterwards.
    """

    @property
    def stream(self) -> TextIO:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignore the stream StreamHandler sets: the current sys.stderr is used instead."""


def configure(level: str | int = "INFO", fmt: str = "text", *,
              stream: TextIO | None = None) -> logging.Handler:
    """Send the package's logs (and the root logger's) to ``stream`` (stderr) in ``fmt``.

    Replaces handlers this function installed before, never the application's own; returns
    the handler. ValueError for an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    formatter: logging.Formatter = (
        JsonFormatter() if fmt == "json" else KeyValueFormatter() if fmt == "kv"
        else _TextFormatter()
    )
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(formatter)
    handler.set_name("singularity_workflow")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "singularity_workflow":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
