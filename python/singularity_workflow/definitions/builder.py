"""Dynamic workflows: flows built step by step at run time (``FlowBuilder``) and run by name.

A code-defined workflow is a class; a dynamic one is decided while the program runs, typically
by an AI agent that plans its own work. ``FlowBuilder`` stores such a flow in the database as it
is built, one ``workflow.create_flow`` / ``workflow.add_step`` call at a time, so the flow is
visible (``singularity-workflow flows``) and usable from SQL like any other::

    builder = FlowBuilder(client)
    flow = builder.create_flow("ai_generated_workflow")
    builder.add_step(flow, "fetch")
    builder.add_step(flow, "each", ["fetch"], map=True)            # one task per element
    builder.add_step(flow, "save", ["each"], execution="distributed", queue="io")
    result = execute_dynamic(flow, {"user_id": 123}, {"fetch": ..., "each": ..., "save": ...})

Steps take the options of code-defined steps (``@step``), with the same defaults: ``execution``
``"local"``, ``queue``, ``resources``, ``max_attempts`` 3, ``timeout`` 60, ``base_delay`` 1,
``start_delay`` 0, ``map`` (True, or the name of the dependency to map over), ``priority``
(none: see ``@step``). The checks are the server's (``workflow.add_step``), mapped to the typed
errors: FlowNotFound (unknown workflow id), UnknownDependency, DuplicateStep, SelfDependency,
InvalidName, InvalidOption. A
rejected step leaves the stored flow as it was. A step added to a flow whose current version
has runs goes into a new version (``add_step`` copies the current one and makes the copy
current), so those runs keep their shape and the next run has the step. A cycle cannot be built
at all: a dependency must exist before the step that names it, so the only loop one could try, a
step depending on itself, is SelfDependency (register_flow, which takes whole graphs, reports
cycles as DependencyCycle).

Workers and dynamic flows. ``execute_dynamic`` runs the *local* steps in the calling process and
also registers ``step_functions`` in this process's handler registry, so a :class:`Worker`
running in the same process serves the flow's distributed steps. A worker in another process
finds handlers the same way, by flow name: a module it imports (``singularity-workflow worker -i
my_app.dynamic``) calls ``register_handlers(flow_slug, {step: fn})`` for each dynamic flow it
serves; a step it has no handler for fails with a clear error and is retried elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from singularity_workflow._client import Client, default_client
from singularity_workflow._errors import (
    EmptyFlow,
    InvalidOption,
)
from singularity_workflow._operations._args import need_text, need_type, need_wait
from singularity_workflow._run import RunResult
from singularity_workflow._run import execute_dynamic as _run_dynamic
from singularity_workflow.definitions._model import register_handlers
from singularity_workflow.definitions._rules import (
    CONTROL_OPTIONS,
    PRIORITY_RANGE,
    STEP_DEFAULTS,
    STEP_OPTIONS,
    resource_list,
)

__all__ = ["FlowBuilder", "MissingStepFunctions", "execute_dynamic"]


class MissingStepFunctions(InvalidOption):
    """``execute_dynamic`` was not given a function for every step (WF010); nothing started.

    ``missing`` lists every step without a function, in the flow's order.
    """

    def __init__(self, message: str, *, missing: Sequence[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.missing = tuple(missing)


class FlowBuilder:
    """Build flows in the database one step at a time (the Elixir library's ``FlowBuilder``).

    ``client``: the :class:`Client` to use (default: the process-wide one over DATABASE_URL).
    Each call is one statement of its own, committed at once: the flow exists from
    ``create_flow`` on and grows with each ``add_step``. No I/O in the constructor.
    """

    def __init__(self, client: Client | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        """The client calls go through."""
        return self._client if self._client is not None else default_client()

    def create_flow(self, name: str, *, timeout: int | None = None) -> str:
        """Create an empty flow called ``name``; return its id (the flow slug, i.e. ``name``).

        ``timeout``: default deadline of its runs in seconds (None: none). Raises InvalidName,
        FlowExists (the name is taken; flows are immutable once they have runs, so a new shape
        needs a new name), InvalidOption (timeout below 1).
        """
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
            raise InvalidOption(f"flow timeout must be a whole number of seconds, got {timeout!r}")
        return self.client.create_flow(name, timeout)

    def add_step(
        self,
        flow_slug: str | None = None,
        step_name: str | None = None,
        depends_on: Iterable[str] = (),
        *,
        workflow_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Append step ``step_name`` to flow ``flow_slug``; return it as stored (normalised).

        ``workflow_id=`` (the Elixir library's name of the first argument) is accepted in place
        of ``flow_slug``; both name the flow, the id ``create_flow`` returned.

        ``depends_on``: names of steps already in the flow. ``options``: those of ``@step``
        (execution, queue, resources, max_attempts, timeout, base_delay, start_delay, map,
        priority). ``priority`` (-1000..1000) is stored with ``set_step_priority`` after the step
        is added: it is not part of the flow's shape.
        ``map=True`` maps over the single dependency (or, for a root step, the run input);
        ``map="dep"`` names the dependency, which is then added to ``depends_on`` if missing.
        Errors (nothing is stored when one is raised): FlowNotFound, UnknownDependency,
        DuplicateStep, SelfDependency, InvalidName, InvalidOption. On a flow whose current
        version has runs, the step goes into a new version (a copy of the current one, made
        current by the first such call); those runs keep their shape.
        """
        if workflow_id is not None:
            if flow_slug is not None:
                raise TypeError("add_step() takes flow_slug or workflow_id, not both")
            flow_slug = workflow_id
        if flow_slug is None or step_name is None:
            raise TypeError("add_step() needs the flow (flow_slug) and the step's name")
        unknown = sorted(set(options) - STEP_OPTIONS)
        if unknown:
            raise InvalidOption(
                f"step {step_name}: unknown option(s) {', '.join(unknown)}",
                hint="Known options: " + ", ".join(sorted(STEP_OPTIONS)) + ".",
            )
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        deps = list(depends_on)
        control = sorted(k for k in CONTROL_OPTIONS if options.get(k) not in (None, False))
        if control:
            # workflow.add_step takes no control-flow options (its signature only grows with a
            # release); a step built here would silently lose them, so refuse instead.
            raise InvalidOption(
                f"step {step_name}: FlowBuilder.add_step does not take {', '.join(control)}",
                hint="Register the flow as a whole (Client.register_flow with a class or JSON)"
                " to use wait steps, sleeps and conditions.",
            )
        mapping = options.get("map", False)
        step_type, map_over = "single", None
        if mapping is True:
            step_type = "map"
        elif isinstance(mapping, str):
            step_type, map_over = "map", mapping
            if mapping not in deps:
                deps.append(mapping)  # mapping over a step implies depending on it
        elif mapping not in (False, None):
            raise InvalidOption(f"step {step_name}: map must be True, False or a step name")
        # The default of code-defined steps, so a flow means the same however it was built.
        execution = options.get("execution", STEP_DEFAULTS["execution"])
        resources = options.get("resources")
        priority = options.get("priority")
        if priority is not None and (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]
        ):
            raise InvalidOption(
                f"step {step_name}: priority must be an integer between {PRIORITY_RANGE[0]}"
                f" and {PRIORITY_RANGE[1]}, got {priority!r}"
            )
        stored = self.client.add_step(
            flow_slug,
            step_name,
            deps,
            step_type=step_type,
            map_over=map_over,
            execution=execution,
            queue=options.get("queue"),
            max_attempts=options.get("max_attempts"),
            base_delay=options.get("base_delay"),
            timeout=options.get("timeout"),
            start_delay=options.get("start_delay"),
            resources=None if resources is None else resource_list(resources),
        )
        if priority is not None:
            self.client.set_step_priority(flow_slug, step_name, priority)
        return stored

    def get_flow(self, workflow_id: str) -> dict[str, Any]:
        """Return the flow as stored (``workflow.get_flow``); FlowNotFound if there is none."""
        return self.client.get_flow(workflow_id)


def execute_dynamic(
    workflow_id: str,
    input: Any,
    step_functions: Mapping[str, Callable[[Any], Any]],
    *,
    timeout: float = 300,
    client: Client | None = None,
    concurrency: int = 10,
) -> RunResult:
    """Run the stored flow ``workflow_id`` on ``input`` with ``step_functions``; wait for the end.

    ``step_functions`` maps every step name to a callable (sync or ``async def``) taking the
    step's input (for a map step: its element), as for code-defined workflows. Before anything
    starts, every step must have a function: MissingStepFunctions lists all the missing names
    at once. Then the run goes exactly like ``execute``: local steps run here, distributed steps
    on the workers of their queues (a Worker in this process finds these functions, which are
    registered under ``workflow_id``); retries, leases, pause/resume/cancel all apply.

    Returns :class:`RunResult`; raises FlowNotFound, EmptyFlow, MissingStepFunctions,
    RunFailed, RunTimeout like ``execute``.
    """
    need_text(workflow_id, "workflow_id")
    need_type(step_functions, "step_functions", Mapping, "a dict of step slug to function")
    need_wait(timeout, concurrency)
    client = client if client is not None else default_client()
    flow = client.get_flow(workflow_id)
    names = [s["slug"] for s in flow["steps"]]
    if not names:
        raise EmptyFlow(
            f"flow {workflow_id} has no steps", hint="Add steps with FlowBuilder.add_step first."
        )
    missing = [n for n in names if n not in step_functions]
    if missing:
        extra = sorted(set(step_functions) - set(names))
        raise MissingStepFunctions(
            f"flow {workflow_id}: no function for step(s) {', '.join(missing)}",
            missing=missing,
            hint=(
                f"Functions were given for names the flow does not have: {', '.join(extra)}."
                if extra
                else "Give step_functions an entry for every step of the flow."
            ),
        )
    not_callable = sorted(n for n in names if not callable(step_functions[n]))
    if not_callable:
        raise InvalidOption(
            f"flow {workflow_id}: the function of step(s) {', '.join(not_callable)} is not callable"
        )
    handlers = {n: step_functions[n] for n in names}
    register_handlers(workflow_id, handlers)
    return _run_dynamic(
        workflow_id, input, handlers, timeout=timeout, client=client, concurrency=concurrency
    )
