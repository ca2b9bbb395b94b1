"""Typed step I/O: a handler's input and return annotations as Pydantic models or dataclasses.

When the first parameter of a handler is annotated with a Pydantic model or a dataclass, the
step's input (the ``{"run": ..., "<dependency>": ...}`` dict, or a map step's element) is
parsed into it before the handler runs; a value that does not fit fails the attempt with a
``NonRetryableError`` carrying the validation message (the same input would fail again, so no
further attempt is spent). When the return annotation is one, the value returned is serialised
from it (``model_dump(mode="json")``, ``dataclasses.asdict``); a Pydantic model also accepts a
plain dict, validated into the model first.

Pydantic is optional (the ``typed`` extra): it is imported only for an annotation that is a
Pydantic model, so dataclasses work without it. A model whose JSON schema cannot be produced
(a field of an arbitrary Python type) cannot describe a step's JSON and is refused when the
workflow is defined. A dataclass is built with ``cls(**input)``: nested dataclasses are not
converted (use Pydantic for nested shapes). This module does no I/O.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from singularity_workflow._errors import DefinitionError, NonRetryableError

__all__ = ["TypedIO", "typed_io"]


@dataclass(frozen=True)
class TypedIO:
    """How to parse a step's input and serialise its output (either may be None: left as is)."""

    parse: Callable[[Any], Any] | None = None
    dump: Callable[[Any], Any] | None = None


def _is_pydantic(tp: Any) -> bool:
    """Tell whether ``tp`` is a Pydantic model class, without importing pydantic."""
    return isinstance(tp, type) and any(
        c.__name__ == "BaseModel" and c.__module__.startswith("pydantic") for c in tp.__mro__
    )


def _is_dataclass(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _need_pydantic(where: str) -> None:
    try:
        import pydantic  # noqa: F401
    except ImportError:  # pragma: no cover - a model cannot exist without pydantic
        raise DefinitionError(
            f"{where}: a Pydantic annotation needs pydantic installed",
            code="WF010", hint="pip install 'singularity-workflow[typed]'",
        ) from None


def _check_model(tp: Any, where: str) -> None:
    """Refuse a Pydantic model that cannot describe JSON (its JSON schema fails)."""
    _need_pydantic(where)
    try:
        tp.model_json_schema()
    except Exception as exc:  # PydanticInvalidForJsonSchema, PydanticSchemaGenerationError
        raise DefinitionError(
            f"{where}: model {tp.__qualname__} cannot describe JSON: {exc}",
            code="WF010",
            hint="A step's input and output are JSON: give every field a JSON-shaped type.",
        ) from None


def _parser(tp: Any, step: str) -> Callable[[Any], Any]:
    if _is_pydantic(tp):
        def parse_model(value: Any) -> Any:
            import pydantic
            try:
                return tp.model_validate(value)
            except pydantic.ValidationError as exc:
                raise NonRetryableError(
                    f"step {step!r}: the input does not fit {tp.__qualname__}: {exc}") from None
        return parse_model

    names = {f.name for f in dataclasses.fields(tp)}

    def parse_dataclass(value: Any) -> Any:
        if not isinstance(value, dict):
            raise NonRetryableError(f"step {step!r}: the input must be an object to make a"
                                    f" {tp.__qualname__}, got {type(value).__name__}")
        try:
            # Keys the dataclass does not name are dropped: the input dict carries every
            # dependency's output, of which a step often reads a few.
            return tp(**{k: v for k, v in value.items() if k in names})
        except TypeError as exc:
            raise NonRetryableError(
                f"step {step!r}: the input does not fit {tp.__qualname__}: {exc}") from None
    return parse_dataclass


def _dumper(tp: Any, step: str) -> Callable[[Any], Any]:
    if _is_pydantic(tp):
        def dump_model(value: Any) -> Any:
            import pydantic
            try:
                model = value if isinstance(value, tp) else tp.model_validate(value)
            except pydantic.ValidationError as exc:
                raise NonRetryableError(
                    f"step {step!r}: the output does not fit {tp.__qualname__}: {exc}") from None
            return model.model_dump(mode="json")
        return dump_model

    def dump_dataclass(value: Any) -> Any:
        if not isinstance(value, tp):
            raise NonRetryableError(f"step {step!r} must return a {tp.__qualname__},"
                                    f" got {type(value).__name__}")
        return dataclasses.asdict(value)
    return dump_dataclass


def typed_io(fn: Callable[..., Any], where: str, step: str, *,
             skip_self: bool = False) -> TypedIO | None:
    """Return the parse/dump pair for ``fn``'s annotations, or None when neither is a model.

    Raises DefinitionError (WF010, naming ``where``) for a Pydantic model that cannot describe
    JSON. Annotations that cannot be resolved (a name not importable from the handler's
    module) are treated as plain, never as models.
    """
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None
    if skip_self and params:
        params = params[1:]
    in_tp = hints.get(params[0].name) if params else None
    out_tp = hints.get("return")
    parse = dump = None
    for tp in (in_tp, out_tp):
        if _is_pydantic(tp):
            _check_model(tp, where)
    if _is_pydantic(in_tp) or _is_dataclass(in_tp):
        parse = _parser(in_tp, step)
    if _is_pydantic(out_tp) or _is_dataclass(out_tp):
        dump = _dumper(out_tp, step)
    if parse is None and dump is None:
        return None
    return TypedIO(parse, dump)
