"""The argument checks every public call shares: a wrong type fails naming what was wrong.

Without them a wrong type reaches psycopg or the server and comes back as a library error that
names neither the argument nor the mistake (``send_with_notify(123, {})`` as UndefinedFunction
``workflow.send_with_notify(integer, jsonb)``, a dict as payload as "cannot adapt type"). The
operations of this package call these before building their SQL, so the client, the module-level
functions and an async client all check the same way, once. Messages read
``<argument> must be <expected>, not <type> <value>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from singularity_workflow._errors import InvalidOption

__all__ = [
    "given",
    "is_data",
    "need_bool",
    "need_functions",
    "need_int",
    "need_positive",
    "need_text",
    "need_type",
    "need_wait",
    "need_workflow",
]

#: Values that are data, never a workflow: the slips ``execute(123, {})``, ``execute("slug", {})``.
_DATA: Final = (str, bytes, int, float, bool, dict, list, tuple, set, frozenset, type(None))

#: How much of a wrong value a message quotes.
_QUOTE: Final = 60


def is_data(value: Any) -> bool:
    """Tell whether ``value`` is plain data (a str, number, container or None), not a workflow."""
    return isinstance(value, _DATA)


def given(value: Any) -> str:
    """Describe ``value`` for an error message: its type and (shortened) repr."""
    text = repr(value)
    if len(text) > _QUOTE:
        text = text[: _QUOTE - 3] + "..."
    return f"{type(value).__name__} {text}"


def need_type(value: Any, name: str, expected: type | tuple[type, ...], what: str) -> None:
    """Raise TypeError unless ``value`` is an instance of ``expected`` (described as ``what``)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    # bool is an int subclass: True is not a count, a limit or an id.
    if isinstance(value, bool) and bool not in types:
        raise TypeError(f"{name} must be {what}, not {given(value)}")
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}, not {given(value)}")


def need_text(value: Any, name: str, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is a str (or None when ``optional``)."""
    if optional and value is None:
        return
    need_type(value, name, str, "a str or None" if optional else "a str")


def need_int(value: Any, name: str, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is an int, not a bool (or None when ``optional``)."""
    if optional and value is None:
        return
    need_type(value, name, int, "an int or None" if optional else "an int")


def need_bool(value: Any, name: str) -> None:
    """Raise TypeError unless ``value`` is a bool."""
    need_type(value, name, bool, "a bool (True or False)")


def need_positive(
    value: Any, name: str, *, optional: bool = False, what: str = "a number of seconds"
) -> None:
    """Raise TypeError for a non-number, InvalidOption (WF010) for one that is not above zero."""
    if optional and value is None:
        return
    need_type(value, name, (int, float), what)
    if not value > 0:  # also refuses NaN
        raise InvalidOption(f"{name} must be above 0, not {value!r}")


def need_workflow(value: Any, name: str = "workflow") -> None:
    """Raise TypeError when ``value`` is plain data rather than a workflow class or instance."""
    if is_data(value):
        hint = (
            "; to run a flow stored in the database by its slug, use execute_dynamic"
            if isinstance(value, str)
            else ""
        )
        raise TypeError(
            f"{name} must be a Workflow subclass or instance, or a class with"
            f" __workflow_steps__, not {given(value)}{hint}"
        )


def need_functions(value: Any, name: str) -> None:
    """Raise TypeError unless ``value`` maps step slugs (str) to callables."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of step slug to function, not {given(value)}")
    for slug, fn in value.items():
        if not isinstance(slug, str) or not callable(fn):
            raise TypeError(
                f"{name} must map step slugs (str) to functions, not {given(slug)} to {given(fn)}"
            )


def need_wait(timeout: Any, concurrency: Any) -> None:
    """Check the waiting arguments of execute(): seconds above 0 and an int concurrency >= 1."""
    need_positive(timeout, "timeout")
    need_int(concurrency, "concurrency")
    need_positive(concurrency, "concurrency", what="an int")
