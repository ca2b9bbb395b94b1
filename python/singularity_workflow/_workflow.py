"""Workflow definitions in Python: the ``@step`` decorator, the seed's list form, validation.

Two ways to write a workflow, both turned into one ``WorkflowDef`` by ``workflow_def``:

* a ``Workflow`` subclass whose methods carry ``@step(...)``::

      class Checkout(Workflow):
          @step
          def fetch(self, input): ...
          @step(depends_on=["fetch"])
          def charge(self, input): ...

* the seed's list form, on any class or module: ``__workflow_steps__`` (a list, or a function
  returning one) of ``(name, fn, options)`` tuples, options being a dict or ``(key, value)``
  pairs with the seed's names (depends_on, execution, queue, resources, max_attempts, timeout,
  base_delay, start_delay, map)::

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

This module does no I/O. ``registry`` maps flow slugs to definitions so that a worker can find
the handler of a claimed task (``find_handler``); ``Workflow`` subclasses enter it when their
class statement runs, other workflows when ``workflow_def`` or ``Client.register_flow`` sees them.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import threading
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeVar, overload

from singularity_workflow._errors import DefinitionError

__all__ = [
    "StepDef",
    "Workflow",
    "WorkflowDef",
    "find_handler",
    "register_handlers",
    "registry",
    "step",
    "workflow_def",
]

Execution = Literal["local", "distributed"]
Handler = Callable[[Any], Any]
F = TypeVar("F", bound=Callable[..., Any])

# The server's name rules (workflow._validate_name and _normalize_step), checked here first.
_FLOW_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_STEP_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_QUEUE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,46}$")
_RESOURCE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
_INT_MAX: Final = 2_147_483_647

#: Attribute the ``step`` decorator leaves on a function: its options, as given.
_STEP_ATTR: Final = "__workflow_step__"
_OPTION_NAMES: Final = frozenset(
    {
        "depends_on",
        "execution",
        "queue",
        "resources",
        "max_attempts",
        "timeout",
        "base_delay",
        "start_delay",
        "map",
    }
)
_DEFAULTS: Final[dict[str, Any]] = {
    "depends_on": (),
    "execution": "local",  # the seed's default; the server's is "distributed"
    "queue": None,
    "resources": (),
    "max_attempts": 3,
    "timeout": 60,
    "base_delay": 1,
    "start_delay": 0,
    "map": False,
}


@dataclass(frozen=True)
class StepDef:
    """One validated step: its handler and every option, defaults filled in.

    ``fn`` is the callable as declared (for a method: the plain function, still needing
    ``self``); use ``WorkflowDef.handler`` to get something to call with the step's input.
    """

    name: str
    fn: Callable[..., Any]
    depends_on: tuple[str, ...] = ()
    execution: Execution = "local"
    queue: str = "local"
    resources: tuple[str, ...] = ()
    max_attempts: int = 3
    timeout: int = 60
    base_delay: int = 1
    start_delay: int = 0
    type: Literal["single", "map"] = "single"
    map_over: str | None = None

    def definition(self) -> dict[str, Any]:
        """Return this step as ``register_flow`` JSON, in the server's normalised form."""
        return {
            "slug": self.name,
            "depends_on": sorted(self.depends_on),
            "type": self.type,
            "map_over": self.map_over,
            "execution": self.execution,
            "queue": self.queue,
            "resources": sorted(self.resources),
            "max_attempts": self.max_attempts,
            "base_delay": self.base_delay,
            "timeout": self.timeout,
            "start_delay": self.start_delay,
        }


@dataclass(frozen=True)
class WorkflowDef:
    """A validated workflow: its flow slug, its steps (in declaration order), its run timeout.

    ``source`` is the class, instance or module it came from. ``handlers_only`` marks a
    definition made by ``register_handlers`` for a flow whose shape lives only in the database.
    """

    slug: str
    steps: tuple[StepDef, ...]
    timeout: int | None = None
    source: Any = field(default=None, compare=False, repr=False)
    handlers_only: bool = field(default=False, compare=False)
    #: Steps declared as plain methods of ``source`` (a class): their handlers need ``self``.
    method_steps: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def definition(self) -> dict[str, Any]:
        """Return the JSON ``workflow.register_flow`` takes for this workflow."""
        if self.handlers_only:
            raise DefinitionError(
                f"flow {self.slug}: only its handlers are known here, not its shape",
                code="WF010",
                hint="Its definition lives in the database (a dynamic flow).",
            )
        return {
            "slug": self.slug,
            "timeout": self.timeout,
            "steps": [s.definition() for s in self.steps],
        }

    def step(self, name: str) -> StepDef:
        """Return the step called ``name``; KeyError if there is none."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"flow {self.slug} has no step {name!r}")

    def handler(self, step_name: str) -> Handler:
        """Return the callable that runs ``step_name``: call it with the task's input.

        A ``@step`` method that needs ``self`` is bound to an instance of the workflow class
        created with no arguments on first use (one per definition), unless the definition was
        made from an instance, whose methods are used. List-form callables are used as given.
        """
        fn = self.step(step_name).fn
        if step_name not in self.method_steps:
            return fn
        with self._lock:
            instance = self._cache.get("instance")
            if instance is None:
                instance = self._cache["instance"] = self.source()
        bound: Handler = types.MethodType(fn, instance)
        return bound


#: Flow slug -> definition, for workers looking up the handler of a claimed task.
registry: dict[str, WorkflowDef] = {}


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
) -> Callable[[F], F]: ...


def step(
    fn: Any = None,
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
) -> Any:
    """Mark a method (or function) as a step; usable bare (``@step``) or with options.

    ``depends_on``: names (or the functions) of the steps whose outputs this one needs.
    ``execution``: ``"local"`` runs in the process that executes the run; ``"distributed"`` goes
    to workers on ``queue`` (default ``"default"``) that offer every name in ``resources``
    (names, or a dict such as ``{"gpu": True}``). ``max_attempts``, ``timeout`` (the lease, in
    seconds), ``base_delay`` (first retry backoff, doubling) and ``start_delay`` are per step.
    ``map=True`` runs one task per element of the array its single dependency (or, for a root
    step, the run input) returns; ``map="dep"`` names which dependency to map over.
    Options are checked when the workflow is defined, not here.
    """
    options = {
        "depends_on": tuple(depends_on),
        "execution": execution,
        "queue": queue,
        "resources": resources,
        "max_attempts": max_attempts,
        "timeout": timeout,
        "base_delay": base_delay,
        "start_delay": start_delay,
        "map": map,
    }

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


class Workflow:
    """Base class for workflows written as classes whose methods carry ``@step``.

    Class attributes: ``slug`` (the flow's name; default ``module.QualifiedName``) and
    ``timeout`` (seconds a run may take; None for no limit). A subclass that declares steps is
    validated when its class statement runs (so a cycle fails at import, not at the first run)
    and enters ``registry``; one with no steps is treated as an abstract base.
    """

    slug: ClassVar[str | None] = None
    timeout: ClassVar[int | None] = None

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


def _default_slug(obj: Any) -> str:
    """Return ``module.QualifiedName`` made into a valid flow slug (at most 128 characters)."""
    if isinstance(obj, types.ModuleType):
        raw = obj.__name__
    else:
        raw = f"{obj.__module__}.{obj.__qualname__}"
    slug = re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)
    if not re.match(r"[A-Za-z_]", slug):
        slug = "_" + slug
    if len(slug) > 128:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:10]
        slug = slug[: 128 - 11] + "_" + digest
    return slug


def _fail(message: str, code: str, hint: str | None = None) -> DefinitionError:
    """Build a DefinitionError (a helper so the checks below read as one line each)."""
    return DefinitionError(message, code=code, hint=hint)


def _check_int(flow: str, name: str, key: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an int in [minimum, 2**31-1], else raise WF010."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _INT_MAX:
        raise _fail(f"flow {flow}, step {name}: {key} must be an integer >= {minimum}", "WF010")
    return value


def _resource_names(flow: str, name: str, resources: Any) -> tuple[str, ...]:
    """Normalise resources: names, ``{"gpu": True}``, or the seed's ``[("gpu", True)]`` pairs."""
    if isinstance(resources, str):
        resources = [resources]
    if isinstance(resources, Mapping):
        pairs: list[Any] = list(resources.items())
    else:
        try:
            pairs = list(resources)
        except TypeError:
            pairs = [object()]
    names: set[str] = set()
    for entry in pairs:
        if isinstance(entry, tuple) and len(entry) == 2:
            key, wanted = entry
            if not wanted:
                continue
            entry = key
        if not isinstance(entry, str) or not _RESOURCE_NAME.match(entry):
            raise _fail(
                f"flow {flow}, step {name}: resources must be resource names,"
                f' a dict like {{"gpu": True}} or (name, bool) pairs; got {entry!r}',
                "WF010",
            )
        names.add(entry)
    return tuple(sorted(names))


def _build_step(
    flow: str,
    name: Any,
    fn: Any,
    options: Mapping[str, Any],
    names_of: Callable[[Any], str | None],
) -> StepDef:
    """Validate one step's name, handler and options; return its StepDef."""
    if not isinstance(name, str) or not _STEP_NAME.match(name) or name == "run":
        raise _fail(
            f"flow {flow}: invalid step name {name!r}",
            "WF001",
            hint='A step name must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$ and must not be "run".',
        )
    if not callable(fn):
        raise _fail(f"flow {flow}, step {name}: handler {fn!r} is not callable", "WF010")
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise _fail(
            f"flow {flow}, step {name}: unknown option(s) {', '.join(unknown)}",
            "WF010",
            hint="Known options: " + ", ".join(sorted(_OPTION_NAMES)) + ".",
        )
    opts = {**_DEFAULTS, **options}

    raw_deps = opts["depends_on"]
    if isinstance(raw_deps, str) or callable(raw_deps):
        raw_deps = [raw_deps]
    deps: list[str] = []
    for dep in raw_deps or ():
        dep_name = names_of(dep) if callable(dep) else dep
        if not isinstance(dep_name, str):
            raise _fail(
                f"flow {flow}, step {name}: depends_on must list step names, got {dep!r}", "WF010"
            )
        if dep_name == name:
            raise _fail(f"flow {flow}: step {name} depends on itself", "WF006")
        if dep_name not in deps:
            deps.append(dep_name)

    execution = opts["execution"]
    if execution not in ("local", "distributed"):
        raise _fail(
            f"flow {flow}, step {name}: execution must be 'local' or 'distributed',"
            f" got {execution!r}",
            "WF010",
        )
    queue = opts["queue"]
    if execution == "local":
        if queue not in (None, "local"):
            raise _fail(
                f"flow {flow}, step {name}: a local step cannot name queue {queue!r}",
                "WF010",
                hint="Local steps run in the executing process; drop queue or make the step"
                " distributed.",
            )
        queue = "local"
    else:
        queue = "default" if queue is None else queue
        if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
            raise _fail(
                f"flow {flow}, step {name}: invalid queue name {queue!r}",
                "WF001",
                hint="A queue name must match ^[a-z_][a-z0-9_]{0,46}$.",
            )
        if queue == "local":
            raise _fail('queue name "local" is reserved for local steps', "WF010")

    mapping = opts["map"]
    step_type: Literal["single", "map"] = "single"
    map_over: str | None = None
    if mapping is True:
        step_type = "map"
        if len(deps) > 1:
            raise _fail(
                f"flow {flow}: map step {name} has several dependencies:"
                " say which one it maps over with map='<step>'",
                "WF010",
            )
        map_over = deps[0] if deps else None
    elif isinstance(mapping, str) or (callable(mapping) and names_of(mapping)):
        step_type = "map"
        map_over = mapping if isinstance(mapping, str) else names_of(mapping)
        if map_over not in deps and map_over is not None:
            deps.append(map_over)  # mapping over a step implies depending on it
    elif mapping not in (False, None):
        raise _fail(f"flow {flow}, step {name}: map must be True, False or a step name", "WF010")

    return StepDef(
        name=name,
        fn=fn,
        depends_on=tuple(sorted(deps)),
        execution=execution,
        queue=queue,
        resources=_resource_names(flow, name, opts["resources"]),
        max_attempts=_check_int(flow, name, "max_attempts", opts["max_attempts"], 1),
        timeout=_check_int(flow, name, "timeout", opts["timeout"], 1),
        base_delay=_check_int(flow, name, "base_delay", opts["base_delay"], 0),
        start_delay=_check_int(flow, name, "start_delay", opts["start_delay"], 0),
        type=step_type,
        map_over=map_over,
    )


def _check_graph(flow: str, steps: Sequence[StepDef]) -> None:
    """Raise WF016 (no steps), WF004 (duplicate), WF003 (unknown dependency), WF005 (cycle)."""
    if not steps:
        raise _fail(f"flow {flow} has no steps", "WF016", hint="Mark methods with @step.")
    seen: set[str] = set()
    for s in steps:
        if s.name in seen:
            raise _fail(f"flow {flow} lists step {s.name} more than once", "WF004")
        seen.add(s.name)
    for s in steps:
        for dep in s.depends_on:
            if dep not in seen:
                raise _fail(f"flow {flow}: step {s.name} has unknown dependency {dep}", "WF003")
    placed: set[str] = set()
    progress = True
    while progress:
        progress = False
        for s in steps:
            if s.name not in placed and all(d in placed for d in s.depends_on):
                placed.add(s.name)
                progress = True
    if len(placed) < len(steps):
        stuck = ", ".join(sorted(s.name for s in steps if s.name not in placed))
        raise _fail(f"flow {flow} has a dependency cycle among steps: {stuck}", "WF005")


def _list_form(obj: Any) -> list[Any]:
    """Return the entries of ``obj.__workflow_steps__`` (a list, or a function returning one)."""
    raw = inspect.getattr_static(obj, "__workflow_steps__")
    if isinstance(obj, type) and inspect.isfunction(raw):
        entries = obj().__workflow_steps__()  # a plain method: needs an instance
    else:
        attr = obj.__workflow_steps__
        entries = attr() if callable(attr) else attr
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise _fail("__workflow_steps__ must be (or return) a list of steps", "WF010")
    return list(entries)


def _options(flow: str, name: Any, raw: Any) -> Mapping[str, Any]:
    """Accept step options as a dict or as the seed's keyword list of ``(key, value)`` pairs."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return raw
    try:
        return dict(raw)
    except (TypeError, ValueError) as exc:
        raise _fail(
            f"flow {flow}, step {name}: options must be a dict or (key, value) pairs", "WF010"
        ) from exc


def _unwrap(fn: Any) -> Any:
    """Return the function inside a staticmethod/classmethod/bound method, for identity tests."""
    while True:
        if isinstance(fn, staticmethod | classmethod | types.MethodType):
            fn = fn.__func__
        else:
            return fn


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
    if not _FLOW_NAME.match(slug):
        raise _fail(
            f"invalid flow name {slug!r}",
            "WF001",
            hint="A flow name must match ^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$.",
        )
    timeout = getattr(obj, "__workflow_timeout__", None)
    if timeout is None and isinstance(cls, type) and issubclass(cls, Workflow):
        timeout = cls.timeout
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
        raise _fail(f"flow {slug}: timeout must be a whole number of seconds or None", "WF010")
    if timeout is not None and timeout < 1:
        raise _fail(f"flow {slug}: timeout must be at least 1 second, got {timeout}", "WF010")

    entries: list[tuple[Any, Any, Mapping[str, Any]]] = []
    methods: set[str] = set()
    if hasattr(obj, "__workflow_steps__"):
        for entry in _list_form(obj):
            if not isinstance(entry, tuple | list) or len(entry) not in (2, 3):
                raise _fail(
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

    steps = [_build_step(slug, name, fn, options, names_of) for name, fn, options in entries]
    _check_graph(slug, steps)
    wdef = WorkflowDef(
        slug=slug, steps=tuple(steps), timeout=timeout, source=obj, method_steps=frozenset(methods)
    )
    registry[slug] = wdef
    return wdef


def register_handlers(flow_slug: str, handlers: Mapping[str, Handler]) -> WorkflowDef:
    """Record the handlers of a flow defined in the database (a dynamic flow) for workers.

    Only the handlers are known: ``definition()`` of the result raises. Returns what was
    recorded in ``registry``.
    """
    if not _FLOW_NAME.match(flow_slug):
        raise _fail(f"invalid flow name {flow_slug!r}", "WF001")
    steps = []
    for name, fn in handlers.items():
        if not isinstance(name, str) or not _STEP_NAME.match(name) or name == "run":
            raise _fail(f"flow {flow_slug}: invalid step name {name!r}", "WF001")
        if not callable(fn):
            raise _fail(f"flow {flow_slug}, step {name}: handler is not callable", "WF010")
        steps.append(StepDef(name=name, fn=fn))
    wdef = WorkflowDef(slug=flow_slug, steps=tuple(steps), handlers_only=True)
    registry[flow_slug] = wdef
    return wdef


def find_handler(flow_slug: str, step_slug: str) -> Handler | None:
    """Return the handler of ``step_slug`` in ``flow_slug`` from ``registry``, or None."""
    wdef = registry.get(flow_slug)
    if wdef is None:
        return None
    try:
        return wdef.handler(step_slug)
    except KeyError:
        return None
