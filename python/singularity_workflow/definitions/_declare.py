"""Declaring workflows in Python: the ``@step`` decorator, ``Workflow`` and the list form.

Two ways to write a workflow, both turned into one ``WorkflowDef`` by ``workflow_def``:

* a ``Workflow`` subclass whose methods carry ``@step(...)``::

      class Checkout(Workflow):
          @step
          def fetch(self, input): ...
          @step(depends_on=["fetch"])
          def charge(self, input): ...

* the Elixir library's list form, on any class or module: ``__workflow_steps__`` (a list, or a
  function returning one) of ``(name, fn, options)`` tuples, options being a dict or
  ``(key, value)`` pairs with the Elixir library's names (depends_on, execution, queue,
  resources, max_attempts, timeout, base_delay, start_delay, map, priority)::

      class MyWorkflow:
          @staticmethod
          def __workflow_steps__():
              return [("fetch", fetch, {"depends_on": []}),
                      ("process", process, {"depends_on": ["fetch"]})]

Everything the server would reject is checked here first, before any connection is made, and
raised as ``DefinitionError`` carrying the SQLSTATE the server would have used (WF001 bad name,
WF003 unknown dependency, WF004 duplicate, WF005 cycle, WF006 self dependency, WF010 bad
option, WF016 no steps). ``WorkflowDef.definition()`` is the JSON ``workflow.register_flow``
takes, with every default filled in the way the server normalises it.

This module does no I/O. ``Workflow`` subclasses enter ``registry`` (``_model``) when their class
statement runs, other workflows when ``workflow_def`` or ``Client.register_flow`` sees them.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar, overload

from singularity_workflow._errors import DefinitionError
from singularity_workflow.definitions._model import (
    Execution,
    WorkflowDef,
    build_step,
    check_graph,
    fail,
    registry,
)
from singularity_workflow.definitions._rules import CONTROL_OPTIONS, FLOW_NAME, STEP_OPTIONS

__all__ = ["StepDefaults", "Workflow", "step", "workflow_def"]

#: Attribute the ``step`` decorator leaves on a function: its options, as given.
_STEP_ATTR: Final = "__workflow_step__"
F = TypeVar("F", bound=Callable[..., Any])

#: An option ``@step`` was not given (so the workflow's ``step_defaults`` may fill it in).
_UNSET: Final[Any] = object()

#: Options a workflow's ``step_defaults`` may set: every step option but the per-step shape.
DEFAULTABLE: Final = STEP_OPTIONS - {"map"} - CONTROL_OPTIONS

@overload
def step(fn: F, /) -> F: ...


@overload
def step(
    fn: None = None,
    /,
    *,
    depends_on: Iterable[str | Callable[..., Any]] = (),
    execution: Execution = "local",
    queue: str | None = None,
    resources: Iterable[str] | Mapping[str, bool] = (),
    max_attempts: int = 3,
    timeout: int = 60,
    base_delay: int = 1,
    start_delay: int = 0,
    map: bool | str = False,
    priority: int | None = None,
    wait_for: str | None = None,
    event_key: str | None = None,
    wait_timeout: int | None = None,
    sleep: int | str | None = None,
    condition: Mapping[str, Any] | None = None,
    run_if_skipped: bool = False,
) -> Callable[[F], F]: ...


def step(
    fn: Any = None,
    /,
    *,
    depends_on: Any = _UNSET,
    execution: Any = _UNSET,
    queue: Any = _UNSET,
    resources: Any = _UNSET,
    max_attempts: Any = _UNSET,
    timeout: Any = _UNSET,
    base_delay: Any = _UNSET,
    start_delay: Any = _UNSET,
    map: Any = _UNSET,
    priority: Any = _UNSET,
    wait_for: Any = _UNSET,
    event_key: Any = _UNSET,
    wait_timeout: Any = _UNSET,
    sleep: Any = _UNSET,
    condition: Any = _UNSET,
    run_if_skipped: Any = _UNSET,
) -> Any:
    """Mark a method (or function) as a step; usable bare (``@step``) or with options.

    ``depends_on``: names (or the functions) of the steps whose outputs this one needs.
    ``execution``: ``"local"`` runs in the process that executes the run; ``"distributed"`` goes
    to workers on ``queue`` (default ``"default"``) that offer every name in ``resources``
    (names, or a dict such as ``{"gpu": True}``). ``max_attempts``, ``timeout`` (the lease, in
    seconds), ``base_delay`` (first retry backoff, doubling) and ``start_delay`` are per step.
    ``map=True`` runs one task per element of the array its single dependency (or, for a root
    step, the run input) returns; ``map="dep"`` names which dependency to map over.
    ``priority`` (-1000..1000, higher first) orders the step's tasks on an ordered queue
    (``set_queue_order``); it is not part of the flow's shape, and None leaves the priority the
    database has for the step (``set_step_priority``) as it is.
    Control flow (docs/control-flow.md): ``wait_for="event"`` makes a wait step, which runs no
    handler (the function's body is never called) and completes with the payload of the event
    sent for its run (``send_event``, ``approve``, ``reject``); ``event_key`` (``"run_id"`` or
    ``"input.<field>"``) scopes the event to the run, ``wait_timeout`` (seconds) fails it when
    nothing came. ``sleep`` (seconds, or a path such as ``"input.at"`` / ``"fetch.delay"`` read
    when the step starts) delays the step without holding a worker. ``condition`` (JSON such
    as ``{"path": "review.approved", "op": "eq", "value": True}``, evaluated in the database)
    skips the step when false; its dependents skip too unless they set ``run_if_skipped``.
    Only the options given are recorded: the others come from the class's ``step_defaults``,
    then from ``STEP_DEFAULTS``. Options are checked when the workflow is defined, not here.
    """
    given = {
        "depends_on": depends_on,
        "execution": execution,
        "queue": queue,
        "resources": resources,
        "max_attempts": max_attempts,
        "timeout": timeout,
        "base_delay": base_delay,
        "start_delay": start_delay,
        "map": map,
        "priority": priority,
        "wait_for": wait_for,
        "event_key": event_key,
        "wait_timeout": wait_timeout,
        "sleep": sleep,
        "condition": condition,
        "run_if_skipped": run_if_skipped,
    }
    options = {key: value for key, value in given.items() if value is not _UNSET}
    if "depends_on" in options:
        options["depends_on"] = tuple(options["depends_on"])

    def mark(target: Any) -> Any:
        inner = target.__func__ if isinstance(target, staticmethod | classmethod) else target
        try:
            setattr(inner, _STEP_ATTR, options)
        except (AttributeError, TypeError) as exc:
            raise DefinitionError(
                f"@step cannot mark {target!r}: it is not a function", code="WF010"
            ) from exc
        return target

    if fn is not None:
        return mark(fn)
    return mark


class StepDefaults(Mapping[str, Any]):
    """A workflow's step defaults, as keywords: ``StepDefaults(execution="distributed", ...)``.

    The same keywords as ``@step`` but ``depends_on`` and ``map``; only those given are
    recorded (a read-only mapping of them). ``step_defaults`` may be a plain dict as well; this
    form is immutable (no shared mutable class attribute) and type-checked.
    """

    def __init__(
        self,
        *,
        execution: Execution | Any = _UNSET,
        queue: str | None | Any = _UNSET,
        resources: Iterable[str] | Mapping[str, bool] | Any = _UNSET,
        max_attempts: int | Any = _UNSET,
        timeout: int | Any = _UNSET,
        base_delay: int | Any = _UNSET,
        start_delay: int | Any = _UNSET,
    ) -> None:
        given = {"execution": execution, "queue": queue, "resources": resources,
                 "max_attempts": max_attempts, "timeout": timeout, "base_delay": base_delay,
                 "start_delay": start_delay}
        self._options = {k: v for k, v in given.items() if v is not _UNSET}

    def __getitem__(self, key: str) -> Any:
        return self._options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def __repr__(self) -> str:
        return "StepDefaults(" + ", ".join(f"{k}={v!r}" for k, v in self._options.items()) + ")"


class Workflow:
    """Base class for workflows written as classes whose methods carry ``@step``.

    Class attributes: ``slug`` (the flow's name; default ``module.QualifiedName``),
    ``timeout`` (seconds a run may take; None for no limit) and ``step_defaults`` (options
    every step takes unless it names its own: ``StepDefaults(execution="distributed",
    queue="cpu", timeout=30)`` or the same as a dict; any step option but ``depends_on`` and
    ``map``, checked by the same rules as the step's options, on each step). A subclass that
    declares steps is
    validated when its class statement runs (so a cycle fails at import, not at the first run)
    and enters ``registry``; one with no steps is treated as an abstract base.
    """

    slug: ClassVar[str | None] = None
    timeout: ClassVar[int | None] = None
    step_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _declared_steps(cls):
            workflow_def(cls)


def _declared_steps(cls: type) -> list[tuple[str, Any]]:
    """Return ``(attribute name, raw attribute)`` of @step members, bases first, overrides kept.

    A subclass may override a base's step; it keeps the base's position in the order.
    """
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, raw in vars(klass).items():
            inner = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
            if hasattr(inner, _STEP_ATTR) and callable(inner):
                found[name] = raw
            elif name in found:
                del found[name]  # overridden by something that is not a step
    return list(found.items())


def _module_name(name: str) -> str:
    """Return the importable name of module ``name``: ``__main__`` becomes what it was run as.

    A script's workflows must get the slug a worker importing the same file (``-i flows``)
    computes, so ``__main__`` is replaced by ``__spec__.name`` (``python -m app.flows``) or by
    the file's stem (``python flows.py``). Without either (an interactive session) there is no
    name both can agree on: DefinitionError, asking for an explicit ``slug``.
    """
    if name != "__main__":
        return name
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name).removesuffix(".__main__")
    file = getattr(main, "__file__", None)
    if file:
        return Path(file).stem
    raise fail(
        "a workflow defined in __main__ without a file has no stable default slug",
        "WF001",
        hint="Set its slug (class attribute `slug`, or `__workflow_slug__`), so that a worker"
        " importing the code finds the same flow.",
    )


def _default_slug(obj: Any) -> str:
    """Return ``module.QualifiedName`` made into a valid flow slug (at most 128 characters)."""
    if isinstance(obj, types.ModuleType):
        raw = _module_name(obj.__name__)
    else:
        raw = f"{_module_name(obj.__module__)}.{obj.__qualname__}"
    slug = re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)
    if not re.match(r"[A-Za-z_]", slug):
        slug = "_" + slug
    if len(slug) > 128:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:10]
        slug = slug[: 128 - 11] + "_" + digest
    return slug


def _list_form(obj: Any) -> list[Any]:
    """Return the entries of ``obj.__workflow_steps__`` (a list, or a function returning one)."""
    raw = inspect.getattr_static(obj, "__workflow_steps__")
    if isinstance(obj, type) and inspect.isfunction(raw):
        entries = obj().__workflow_steps__()  # a plain method: needs an instance
    else:
        attr = obj.__workflow_steps__
        entries = attr() if callable(attr) else attr
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise fail("__workflow_steps__ must be (or return) a list of steps", "WF010")
    return list(entries)


def _options(flow: str, name: Any, raw: Any) -> Mapping[str, Any]:
    """Accept step options as a dict or as the Elixir library's list of ``(key, value)`` pairs."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return raw
    try:
        return dict(raw)
    except (TypeError, ValueError) as exc:
        raise fail(
            f"flow {flow}, step {name}: options must be a dict or (key, value) pairs", "WF010"
        ) from exc


def _step_defaults(flow: str, obj: Any) -> Mapping[str, Any]:
    """Return a workflow's ``step_defaults`` (or its ``__workflow_step_defaults__``).

    Their keys are checked here (WF010 for an unknown or per-step option); their values are
    checked on every step they reach, by ``build_step``'s rules, as if each step had named them.
    """
    raw = getattr(obj, "__workflow_step_defaults__", None)
    if raw is None:
        raw = getattr(obj, "step_defaults", None)
    if raw is None or (isinstance(raw, Mapping) and not raw):
        return {}
    if not isinstance(raw, Mapping):
        raise fail(f"flow {flow}: step_defaults must be a dict of step options, got {raw!r}",
                   "WF010")
    unknown = sorted(str(k) for k in raw if k not in DEFAULTABLE)
    if unknown:
        raise fail(
            f"flow {flow}: step_defaults has option(s) a default cannot set: {', '.join(unknown)}",
            "WF010",
            hint="step_defaults may set: " + ", ".join(sorted(DEFAULTABLE)) + ".",
        )
    return dict(raw)


def _unwrap(fn: Any) -> Any:
    """Return the function inside a staticmethod/classmethod/bound method, for identity tests."""
    while True:
        if isinstance(fn, staticmethod | classmethod | types.MethodType):
            fn = fn.__func__
        else:
            return fn


def discover(module: types.ModuleType) -> list[WorkflowDef]:
    """Register the workflows defined in ``module``, in either form; return their definitions.

    ``Workflow`` subclasses entered the registry when their class statement ran; classes with
    ``__workflow_steps__`` (the Elixir library's list form) and a module that has
    ``__workflow_steps__`` itself are validated and registered here. Classes only imported
    into ``module`` from elsewhere are left to their own module.
    """
    found: list[WorkflowDef] = []
    if hasattr(module, "__workflow_steps__"):
        found.append(workflow_def(module))
    for value in list(vars(module).values()):
        if not isinstance(value, type) or value.__module__ != module.__name__:
            continue
        if issubclass(value, Workflow) and _declared_steps(value):
            found.append(workflow_def(value))
        elif hasattr(value, "__workflow_steps__") and not issubclass(value, Workflow):
            found.append(workflow_def(value))
    return found


def workflow_def(obj: Any) -> WorkflowDef:
    """Validate a workflow and return its definition; also record it in ``registry``.

    ``obj``: a ``WorkflowDef`` (returned as is), a class whose methods carry ``@step``, an
    instance of one (its bound methods become the handlers), or a class, instance or module with
    ``__workflow_steps__``. Raises DefinitionError before any database access.
    """
    if isinstance(obj, WorkflowDef):
        registry[obj.slug] = obj
        return obj
    cls = obj if isinstance(obj, type | types.ModuleType) else type(obj)
    slug_attr = getattr(obj, "__workflow_slug__", None) or getattr(obj, "slug", None)
    slug = slug_attr if isinstance(slug_attr, str) else _default_slug(cls)
    if not FLOW_NAME.match(slug):
        raise fail(
            f"invalid flow name {slug!r}",
            "WF001",
            hint="A flow name must match ^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$.",
        )
    timeout = getattr(obj, "__workflow_timeout__", None)
    if timeout is None and isinstance(cls, type) and issubclass(cls, Workflow):
        timeout = cls.timeout
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
        raise fail(f"flow {slug}: timeout must be a whole number of seconds or None", "WF010")
    if timeout is not None and timeout < 1:
        raise fail(f"flow {slug}: timeout must be at least 1 second, got {timeout}", "WF010")

    entries: list[tuple[Any, Any, Mapping[str, Any]]] = []
    methods: set[str] = set()
    if hasattr(obj, "__workflow_steps__"):
        for entry in _list_form(obj):
            if not isinstance(entry, tuple | list) or len(entry) not in (2, 3):
                raise fail(
                    f"flow {slug}: each __workflow_steps__ entry must be (name, fn, options),"
                    f" got {entry!r}",
                    "WF010",
                )
            name, fn = entry[0], entry[1]
            entries.append((name, fn, _options(slug, name, entry[2] if len(entry) == 3 else {})))
    elif isinstance(cls, type):
        for name, raw in _declared_steps(cls):
            inner = _unwrap(raw)
            if isinstance(obj, type):
                fn = raw.__get__(None, cls) if isinstance(raw, staticmethod | classmethod) else raw
                if inspect.isfunction(raw):
                    methods.add(name)
            else:
                fn = getattr(obj, name)  # bound to the given instance
            entries.append((name, fn, getattr(inner, _STEP_ATTR)))

    by_identity = {id(_unwrap(fn)): name for name, fn, _ in entries if isinstance(name, str)}

    def names_of(ref: Any) -> str | None:
        found = by_identity.get(id(_unwrap(ref)))
        return found if found is not None else getattr(ref, "__name__", None)

    defaults = _step_defaults(slug, obj)
    steps = [
        build_step(slug, name, fn, options, names_of, defaults=defaults,
                   skip_self=name in methods)
        for name, fn, options in entries
    ]
    check_graph(slug, steps)
    wdef = WorkflowDef(
        slug=slug, steps=tuple(steps), timeout=timeout, source=obj, method_steps=frozenset(methods)
    )
    registry[slug] = wdef
    return wdef


