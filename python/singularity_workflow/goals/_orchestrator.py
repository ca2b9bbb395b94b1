"""Goal-driven orchestration (HTDAG): goal -> decomposer -> stored task graph -> flow -> run.

A *decomposer* (see :mod:`singularity_workflow.goals.decomposers`) turns a goal into task dicts
``{"id", "description", "depends_on": [...], "subtasks": [...]}``: rules, or an LLM. The
:class:`Orchestrator` checks what it returned, flattens it, stores it as a task graph
(``workflow.task_graphs``) so it can be previewed and approved, and runs it as a flow whose steps
are the tasks. Nothing here drops or renames a task silently: anything malformed is a
:class:`DecompositionError` naming the task and the problem.

Hierarchy. A task may carry ``subtasks`` (tasks themselves), or ``"complex": true``, which asks
the decomposer again with that task's description (``max_depth`` bounds the nesting; top-level
tasks are depth 0, so ``max_depth=1`` means a flat graph). Subtasks a decomposer returns for a
complex task get ids prefixed with the parent's (``build__api``), so two branches may both say
``test``. Only leaves run. The graph is flattened so that:

* depending on a parent means depending on every leaf under it;
* a parent's own ``depends_on`` applies to every leaf under it;

ids are unique across the whole tree; a task depending on itself, on one of its ancestors or on
one of its own subtasks is an error. The tree is stored beside the flat tasks, for display.

Execution. Each leaf becomes a step of the flow ``htdag.<graph_id>`` (see :func:`graph_flow_slug`,
registered idempotently, so a graph can run again). ``step_functions`` are keyed by task id; a
task without one runs ``fallback(task, input)``, where ``task`` is its dict (``id``,
``description``, ``depth``, ``parent`` ...): the usual shape when an LLM agent executes every
task. Handlers take the step input as usual: ``{"run": {"goal", "graph_id", ...}, "<dep id>":
its output, ...}``. Steps are local by default (run by the executing process); with
``Orchestrator(execution="distributed", queue=...)`` they go to workers, which find the handlers
when they run in this process, or, in another process, through a module that calls
``register_handlers(graph_flow_slug(graph_id), orchestrator.handlers(graph, ...))``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from singularity_workflow._client import Client, default_client
from singularity_workflow._errors import (
    InvalidOption,
    InvalidState,
    RunFailed,
    RunTimeout,
)
from singularity_workflow._run import RunResult
from singularity_workflow.definitions.builder import MissingStepFunctions, execute_dynamic
from singularity_workflow.goals._graph import (
    Decomposer,
    Decomposition,
    DecompositionError,
    DecompositionTimeout,
    Fallback,
    TaskGraph,
    display_tree,
    flatten_tasks,
    graph_flow_slug,
    run_decomposer,
)

__all__ = [
    "DecompositionError",
    "DecompositionTimeout",
    "Orchestrator",
    "TaskGraph",
    "WorkflowComposer",
    "flatten_tasks",
    "graph_flow_slug",
    "run_decomposer",
]


# --------------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------------


class Orchestrator:
    """Decompose goals into stored task graphs and execute them as flows.

    ``client``: the :class:`Client` (default: the process-wide one over DATABASE_URL).
    Step options for the tasks' steps: ``execution`` (``"local"``: this process runs them;
    ``"distributed"``: workers on ``queue`` offering ``resources``), ``max_attempts``,
    ``step_timeout`` (each task's lease, seconds), ``base_delay``. No I/O in the constructor.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        execution: str = "local",
        queue: str | None = None,
        resources: Sequence[str] = (),
        max_attempts: int = 3,
        step_timeout: int = 60,
        base_delay: int = 1,
    ) -> None:
        self._client = client
        self.step_options: dict[str, Any] = {
            "execution": execution,
            "queue": queue,
            "resources": list(resources),
            "max_attempts": max_attempts,
            "timeout": step_timeout,
            "base_delay": base_delay,
        }

    @property
    def client(self) -> Client:
        """The client calls go through."""
        return self._client if self._client is not None else default_client()

    # -- planning ------------------------------------------------------------------------------

    def decompose_goal(
        self,
        goal: str,
        decomposer: Decomposer,
        *,
        max_depth: int = 3,
        timeout: float = 60.0,
    ) -> TaskGraph:
        """Ask ``decomposer`` to break ``goal`` into tasks; check, flatten and store the graph.

        Nothing runs: the stored graph can be previewed (``graph.tree()``), approved
        (:meth:`approve`) and executed (:meth:`execute_graph`). ``timeout`` bounds the whole
        decomposition (every call of the decomposer, complex tasks included). Raises
        DecompositionError / DecompositionTimeout; nothing is stored then.
        """
        if not isinstance(goal, str) or not goal.strip():
            raise DecompositionError("a goal must be a non-blank string")
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise DecompositionError(f"max_depth must be an integer >= 1, got {max_depth!r}")
        state = Decomposition(decomposer, max_depth, timeout)
        nodes = state.build(state.ask(goal, "the goal"), 0, "the goal", "")
        flat = flatten_tasks(nodes)
        graph_id = self.client.store_task_graph(goal, flat, display_tree(nodes))
        return self.get_graph(graph_id)

    def get_graph(self, graph_id: UUID | str) -> TaskGraph:
        """Return a stored task graph; TaskGraphNotFound if there is none."""
        data = self.client.get_task_graph(_uuid(graph_id))
        return TaskGraph.from_json(data)

    def approve(self, graph_id: UUID | str) -> TaskGraph:
        """Approve a stored graph for execution (idempotent); TaskGraphNotFound."""
        self.client.approve_task_graph(_uuid(graph_id))
        return self.get_graph(graph_id)

    # -- execution -----------------------------------------------------------------------------

    def handlers(
        self,
        graph: TaskGraph,
        step_functions: Mapping[str, Callable[[Any], Any]] | None = None,
        *,
        fallback: Fallback | None = None,
    ) -> dict[str, Callable[[Any], Any]]:
        """Return ``{task id: handler}`` for every task: its step function, else the fallback.

        Raises MissingStepFunctions naming every task that has neither. Workers in another
        process use it with ``register_handlers(graph_flow_slug(graph.graph_id), ...)``.
        """
        functions = dict(step_functions or {})
        ids = [t["id"] for t in graph.tasks]
        missing = [i for i in ids if i not in functions and fallback is None]
        if missing:
            raise MissingStepFunctions(
                f"task graph {graph.graph_id}: no step function for task(s) {', '.join(missing)}",
                missing=missing,
                hint="Give step_functions for these task ids, or a fallback(task, input).",
            )
        result: dict[str, Callable[[Any], Any]] = {}
        for task in graph.tasks:
            fn = functions.get(task["id"])
            if fn is None:
                assert fallback is not None
                fn = _bind_fallback(fallback, task)
            result[task["id"]] = fn
        return result

    def flow_definition(self, graph: TaskGraph) -> dict[str, Any]:
        """Return the ``register_flow`` JSON of the flow that runs ``graph``."""
        return {
            "slug": graph_flow_slug(graph.graph_id),
            "timeout": None,
            "steps": [
                {"slug": t["id"], "depends_on": list(t["depends_on"]), **self.step_options}
                for t in graph.tasks
            ],
        }

    def execute_graph(
        self,
        graph_id: UUID | str,
        step_functions: Mapping[str, Callable[[Any], Any]] | None = None,
        *,
        fallback: Fallback | None = None,
        input: Mapping[str, Any] | None = None,
        timeout: float = 300,
        concurrency: int = 10,
    ) -> RunResult:
        """Run an approved stored graph and wait for it; return its RunResult.

        The run input is ``{"goal", "graph_id", **input}``. The graph's flow keeps the step
        options of its latest registration: running it again through an Orchestrator with
        other options registers a new version of the flow, and the run uses that.
        Raises InvalidState (not approved),
        TaskGraphNotFound, MissingStepFunctions, and RunFailed / RunTimeout like ``execute``.
        The flow and the run are recorded on the graph (``flow_slug``, ``last_run_id``).
        """
        graph = self.get_graph(graph_id)
        if not graph.approved:
            raise InvalidState(
                f"task graph {graph.graph_id} is not approved",
                code="WF013",
                hint="Preview it, then approve it (Orchestrator.approve or `goal approve`).",
            )
        handlers = self.handlers(graph, step_functions, fallback=fallback)
        slug = self.client.register_flow(self.flow_definition(graph))
        # Checks approval again in the database, under the graph's row lock.
        self.client.record_task_graph_run(graph.graph_id, slug)
        run_input = {"goal": graph.goal, "graph_id": str(graph.graph_id), **(input or {})}
        run_id: UUID | None = None
        try:
            result = execute_dynamic(
                slug,
                run_input,
                handlers,
                timeout=timeout,
                client=self.client,
                concurrency=concurrency,
            )
            run_id = result.run_id
            return result
        except (RunFailed, RunTimeout) as exc:
            run_id = exc.run_id
            raise
        finally:
            if run_id is not None:
                self.client.record_task_graph_run(graph.graph_id, slug, run_id)

    def execute_goal(
        self,
        goal: str,
        decomposer: Decomposer,
        step_functions: Mapping[str, Callable[[Any], Any]] | None = None,
        *,
        fallback: Fallback | None = None,
        input: Mapping[str, Any] | None = None,
        max_depth: int = 3,
        decompose_timeout: float = 60.0,
        timeout: float = 300,
        concurrency: int = 10,
    ) -> RunResult:
        """Decompose ``goal``, store and approve the graph, run it; return the RunResult.

        The one-call path (no human preview): the graph is still stored, so it can be
        inspected afterwards with ``get_graph`` (the run id is in ``RunResult.run_id`` and on
        the graph). Missing step functions are reported before anything runs.
        """
        graph = self.decompose_goal(
            goal, decomposer, max_depth=max_depth, timeout=decompose_timeout
        )
        self.handlers(graph, step_functions, fallback=fallback)  # fail before approving
        self.approve(graph.graph_id)
        return self.execute_graph(
            graph.graph_id,
            step_functions,
            fallback=fallback,
            input=input,
            timeout=timeout,
            concurrency=concurrency,
        )


def _bind_fallback(fallback: Fallback, task: Mapping[str, Any]) -> Callable[[Any], Any]:
    """Return a step handler that calls ``fallback(task, input)`` (async if the fallback is)."""
    frozen = dict(task)
    if inspect.iscoroutinefunction(fallback):

        async def run_async(step_input: Any) -> Any:
            return await fallback(dict(frozen), step_input)

        run_async.__name__ = f"fallback_{frozen['id']}"
        return run_async

    def run(step_input: Any) -> Any:
        return fallback(dict(frozen), step_input)

    run.__name__ = f"fallback_{frozen['id']}"
    return run


def _uuid(value: UUID | str) -> UUID:
    """Return ``value`` as a UUID; InvalidOption (WF010) for text that is not one."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidOption(f"{value!r} is not a task graph id (a UUID)") from None


class WorkflowComposer:
    """The Elixir library's one-call wrapper: goal in, result out (``compose_from_goal``).

    Takes the same arguments as :class:`Orchestrator` and delegates to it.
    """

    def __init__(self, client: Client | None = None, **orchestrator_options: Any) -> None:
        self.orchestrator = Orchestrator(client, **orchestrator_options)

    def compose_from_goal(
        self,
        goal: str,
        decomposer: Decomposer,
        step_functions: Mapping[str, Callable[[Any], Any]] | None = None,
        **options: Any,
    ) -> RunResult:
        """Decompose ``goal`` and run it (``Orchestrator.execute_goal``); return the RunResult."""
        return self.orchestrator.execute_goal(goal, decomposer, step_functions, **options)
