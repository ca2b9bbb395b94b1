"""Validated definitions: ``StepDef``, ``WorkflowDef``, the handler registry, the checks.

``build_step`` checks one step's name, handler and options against ``_rules`` and fills in the
defaults; ``check_graph`` checks the steps together. Why Python checks the graph at all when
``workflow.register_flow`` is the authority: a ``Workflow`` class is validated when its class
statement runs, with no database at hand, so that a cycle or an unknown dependency fails at
import rather than at the first run. The server repeats every check on registration.

``registry`` maps flow slugs to definitions so that a worker can find the handler of a claimed
task (``find_handler``). This module does no I/O.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from singularity_workflow._errors import DefinitionError
from singularity_workflow.definitions._control import WAIT_PLACEMENT, control_options
from singularity_workflow.definitions._rules import (
    FLOW_NAME,
    INT_MAX,
    OPTION_NAMES,
    PRIORITY_RANGE,
    QUEUE_NAME,
    RESOURCE_NAME,
    STEP_DEFAULTS,
    STEP_NAME,
    resource_list,
)
from singularity_workflow.definitions._signature import context_param
from singularity_workflow.definitions._typed import TypedIO, typed_io

__all__ = [
    "Execution",
    "Handler",
    "StepDef",
    "WorkflowDef",
    "build_step",
    "check_graph",
    "fail",
    "find_handler",
    "register_handlers",
    "registry",
]

Execution = Literal["local", "distributed"]
Handler = Callable[[Any], Any]


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
    type: Literal["single", "map", "wait"] = "single"
    map_over: str | None = None
    #: A wait step's event name, key path and timeout (``_control``); None on other steps.
    wait_for: str | None = None
    event_key: str | None = None
    wait_timeout: int | None = None
    #: Seconds, or a path read when the step starts, to sleep before its tasks run.
    sleep: int | str | None = None
    #: A condition on the run input and the dependencies' outputs (JSON, checked by the server's
    #: _check_condition); False skips the step. run_if_skipped: run when a dependency was skipped.
    condition: Mapping[str, Any] | None = field(default=None, hash=False)
    run_if_skipped: bool = False
    #: Claim priority on an ordered queue (-1000..1000); None: leave the stored one as it is.
    priority: int | None = None
    #: How the handler takes a StepContext (``_signature.context_param``): None when it does not.
    context: str | None = field(default=None, compare=False)
    #: How its input is parsed and its output serialised (``_typed``): None for plain JSON.
    typed: TypedIO | None = field(default=None, compare=False, repr=False)

    def definition(self) -> dict[str, Any]:
        """Return this step as ``register_flow`` JSON, in the server's normalised form.

        ``priority`` is there only when declared: it is not part of the flow's shape (the
        server stores it beside the versions, see ``_declare_step_priorities``).
        """
        body: dict[str, Any] = {
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
        if self.priority is not None:
            body["priority"] = self.priority
        for key in ("wait_for", "event_key", "wait_timeout", "sleep", "condition"):
            value = getattr(self, key)
            if value is not None:
                body[key] = dict(value) if key == "condition" else value
        if self.run_if_skipped:
            body["run_if_skipped"] = True
        return body


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


def fail(message: str, code: str, hint: str | None = None) -> DefinitionError:
    """Build a DefinitionError (a helper so the checks read as one line each)."""
    return DefinitionError(message, code=code, hint=hint)


def _check_int(flow: str, name: str, key: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an int in [minimum, 2**31-1], else raise WF010."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INT_MAX:
        raise fail(f"flow {flow}, step {name}: {key} must be an integer >= {minimum}", "WF010")
    return value


def _check_priority(flow: str, name: str, value: Any) -> int | None:
    """Return ``value`` if it is None or an int in ``PRIORITY_RANGE``, else raise WF010."""
    if value is None:
        return None
    least, greatest = PRIORITY_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= greatest:
        raise fail(
            f"flow {flow}, step {name}: priority must be an integer between {least} and"
            f" {greatest}, got {value!r}",
            "WF010",
        )
    return value


def _resource_names(flow: str, name: str, resources: Any) -> tuple[str, ...]:
    """Check the names of ``resource_list(resources)``; return them sorted, without repeats."""
    names: set[str] = set()
    for entry in resource_list(resources):
        if not isinstance(entry, str) or not RESOURCE_NAME.match(entry):
            raise fail(
                f"flow {flow}, step {name}: resources must be resource names,"
                f' a dict like {{"gpu": True}} or (name, bool) pairs; got {entry!r}',
                "WF010",
            )
        names.add(entry)
    return tuple(sorted(names))


def build_step(
    flow: str,
    name: Any,
    fn: Any,
    options: Mapping[str, Any],
    names_of: Callable[[Any], str | None],
    *,
    defaults: Mapping[str, Any] | None = None,
    skip_self: bool = False,
) -> StepDef:
    """Validate one step's name, handler and options; return its StepDef.

    ``defaults``: the workflow's own step defaults (``Workflow.step_defaults``), between
    ``STEP_DEFAULTS`` and the step's options, so they pass the same checks as the options.
    ``skip_self``: ``fn`` is a plain method whose first parameter is ``self``.
    """
    if not isinstance(name, str) or not STEP_NAME.match(name) or name == "run":
        raise fail(
            f"flow {flow}: invalid step name {name!r}",
            "WF001",
            hint='A step name must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$ and must not be "run".',
        )
    if not callable(fn):
        raise fail(f"flow {flow}, step {name}: handler {fn!r} is not callable", "WF010")
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise fail(
            f"flow {flow}, step {name}: unknown option(s) {', '.join(unknown)}",
            "WF010",
            hint="Known options: " + ", ".join(sorted(OPTION_NAMES)) + ".",
        )
    defaults = dict(defaults or {})
    if options.get("wait_for") is not None:
        # A wait step runs no handler: the workflow's placement defaults do not apply to it.
        placement = ("execution", "queue", "resources")
        defaults = {k: v for k, v in defaults.items() if k not in placement}
    if options.get("execution") == "local" and "queue" not in options:
        defaults.pop("queue", None)  # a step made local here takes no default queue
    opts = {**STEP_DEFAULTS, **defaults, **options}
    if options.get("wait_for") is not None:
        opts.update(WAIT_PLACEMENT)

    raw_deps = opts["depends_on"]
    if isinstance(raw_deps, str) or callable(raw_deps):
        raw_deps = [raw_deps]
    deps: list[str] = []
    for dep in raw_deps or ():
        dep_name = names_of(dep) if callable(dep) else dep
        if not isinstance(dep_name, str):
            raise fail(
                f"flow {flow}, step {name}: depends_on must list step names, got {dep!r}", "WF010"
            )
        if dep_name == name:
            raise fail(f"flow {flow}: step {name} depends on itself", "WF006")
        if dep_name not in deps:
            deps.append(dep_name)

    execution = opts["execution"]
    if execution not in ("local", "distributed"):
        raise fail(
            f"flow {flow}, step {name}: execution must be 'local' or 'distributed',"
            f" got {execution!r}",
            "WF010",
        )
    queue = opts["queue"]
    if execution == "local":
        if queue not in (None, "local"):
            raise fail(
                f"flow {flow}, step {name}: a local step cannot name queue {queue!r}",
                "WF010",
                hint="Local steps run in the executing process; drop queue or make the step"
                " distributed.",
            )
        queue = "local"
    else:
        queue = "default" if queue is None else queue
        if not isinstance(queue, str) or not QUEUE_NAME.match(queue):
            raise fail(
                f"flow {flow}, step {name}: invalid queue name {queue!r}",
                "WF001",
                hint="A queue name must match ^[a-z_][a-z0-9_]{0,46}$.",
            )
        if queue == "local":
            raise fail('queue name "local" is reserved for local steps', "WF010")

    mapping = opts["map"]
    step_type: Literal["single", "map", "wait"] = "single"
    map_over: str | None = None
    if mapping is True:
        step_type = "map"
        if len(deps) > 1:
            raise fail(
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
        raise fail(f"flow {flow}, step {name}: map must be True, False or a step name", "WF010")

    control = control_options(flow, name, options, deps)
    if "wait_for" in control:
        step_type = "wait"
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
        priority=_check_priority(flow, name, opts["priority"]),
        **control,
        context=context_param(fn, f"flow {flow}, step {name}", skip_self=skip_self),
        typed=typed_io(fn, f"flow {flow}, step {name}", name, skip_self=skip_self),
    )


def check_graph(flow: str, steps: Sequence[StepDef]) -> None:
    """Raise WF016 (no steps), WF004 (duplicate), WF003 (unknown dependency), WF005 (cycle)."""
    if not steps:
        raise fail(f"flow {flow} has no steps", "WF016", hint="Mark methods with @step.")
    seen: set[str] = set()
    for s in steps:
        if s.name in seen:
            raise fail(f"flow {flow} lists step {s.name} more than once", "WF004")
        seen.add(s.name)
    for s in steps:
        for dep in s.depends_on:
            if dep not in seen:
                raise fail(f"flow {flow}: step {s.name} has unknown dependency {dep}", "WF003")
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
        raise fail(f"flow {flow} has a dependency cycle among steps: {stuck}", "WF005")


def register_handlers(flow_slug: str, handlers: Mapping[str, Handler]) -> WorkflowDef:
    """Record the handlers of a flow defined in the database (a dynamic flow) for workers.

    Only the handlers are known: ``definition()`` of the result raises. Returns what was
    recorded in ``registry``.
    """
    if not FLOW_NAME.match(flow_slug):
        raise fail(f"invalid flow name {flow_slug!r}", "WF001")
    steps = []
    for name, fn in handlers.items():
        if not isinstance(name, str) or not STEP_NAME.match(name) or name == "run":
            raise fail(f"flow {flow_slug}: invalid step name {name!r}", "WF001")
        if not callable(fn):
            raise fail(f"flow {flow_slug}, step {name}: handler is not callable", "WF010")
        where = f"flow {flow_slug}, step {name}"
        steps.append(StepDef(name=name, fn=fn, context=context_param(fn, where),
                             typed=typed_io(fn, where, name)))
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
