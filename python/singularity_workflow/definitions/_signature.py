"""How a step's handler asks for its :class:`~singularity_workflow.StepContext`, read once.

A handler takes its input as its first parameter. It may ask for a context in one of two ways:

* a second positional parameter without a default (``def handler(input, ctx)``), whatever
  its name, or with a default when it is annotated ``StepContext``;
* a keyword-only parameter annotated ``StepContext`` (``def handler(input, *, ctx:
  StepContext)``), passed by name.

Anything else the engine could not fill (a second required parameter beyond the context, a
required keyword-only parameter that is not the context, no parameter for the input at all) is
refused when the workflow is defined, with a DefinitionError naming the handler, instead of a
``TypeError`` on every attempt. Parameters with defaults, ``*args`` and ``**kwargs`` are left
alone, so every one-argument handler keeps working unchanged. A callable whose signature
cannot be read (some builtins) is taken to be a one-argument handler.

This module does no I/O and imports nothing above ``_errors`` (the worker imports it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Final

from singularity_workflow._errors import DefinitionError

__all__ = ["POSITIONAL", "context_param"]

#: ``context_param``'s answer for "pass the context as the second positional argument".
POSITIONAL: Final = "*"

_POSITIONAL_KINDS: Final = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


def _is_context_annotation(annotation: Any) -> bool:
    """Tell whether an annotation names StepContext (the class, or its name as a string)."""
    if annotation is inspect.Parameter.empty:
        return False
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation.rsplit(".", 1)[-1].strip("'\"") == "StepContext"
    return getattr(annotation, "__name__", None) == "StepContext"


def context_param(fn: Callable[..., Any], where: str, *, skip_self: bool = False) -> str | None:
    """Return how ``fn`` takes a context: None (it does not), ``POSITIONAL``, or a keyword name.

    ``where`` names the handler in the error (``flow F, step S: handler name``); ``skip_self``
    drops the first parameter of a plain method (bound to an instance later). Raises
    DefinitionError (WF010) for a signature the engine cannot call.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None  # no readable signature: called with the input alone, as before
    if skip_self and params and params[0].kind in _POSITIONAL_KINDS:
        params = params[1:]
    name = getattr(fn, "__qualname__", None) or repr(fn)

    def refuse(why: str) -> DefinitionError:
        return DefinitionError(
            f"{where}: handler {name} {why}",
            code="WF010",
            hint="A handler takes its input, and optionally a StepContext: `def h(input)`,"
            " `def h(input, ctx)` or `def h(input, *, ctx: StepContext)`.",
        )

    positional = [p for p in params if p.kind in _POSITIONAL_KINDS]
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if not positional and not has_varargs:
        raise refuse("takes no parameter for the step's input")
    found: str | None = None
    if len(positional) >= 2:
        second = positional[1]
        # An optional second parameter that is not annotated as the context is the handler's
        # own (`def h(input, retries=3)`): it keeps working as before, called with one argument.
        if second.default is inspect.Parameter.empty or _is_context_annotation(
                second.annotation):
            found = POSITIONAL
        extra = [p.name for p in positional[2 if found else 1:]
                 if p.default is inspect.Parameter.empty]
        if extra:
            raise refuse(f"has required parameters beyond the input and the context: "
                         f"{', '.join(extra)}")
    for p in params:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if _is_context_annotation(p.annotation):
            if found is not None:
                raise refuse("asks for the context twice")
            found = p.name
        elif p.default is inspect.Parameter.empty:
            raise refuse(f"has a required keyword-only parameter {p.name!r} that is not a"
                         " StepContext")
    return found
