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

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from singularity_workflow._client import Client, default_client
from singularity_workflow._errors import (
    InvalidOption,
    InvalidState,
    RunFailed,
    RunTimeout,
    WorkflowError,
)
from singularity_workflow._executor import RunResult
from singularity_workflow.definitions import STEP_NAME
from singularity_workflow.definitions.builder import MissingStepFunctions, execute_dynamic

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

#: Keys of a task dict with a meaning here; any other key is kept as data on the task.
_STRUCTURE_KEYS: Final = frozenset({"id", "description", "depends_on", "subtasks", "complex"})

Decomposer = Callable[[str], Any]
Fallback = Callable[[dict[str, Any], Any], Any]


class DecompositionError(WorkflowError):
    """A decomposer's output cannot become a task graph; the message names task and problem.

    ``code`` is the SQLSTATE the server uses for the same mistake: WF010 malformed output,
    WF001 an id that cannot be a step name, WF003 unknown dependency, WF004 duplicate id,
    WF005 cycle (including depending on an ancestor or a subtask), WF006 self dependency,
    WF016 no tasks.
    """

    default_code = "WF010"


class DecompositionTimeout(DecompositionError):
    """The decomposer did not answer within the timeout (a sync one is left running, detached)."""


def graph_flow_slug(graph_id: UUID | str) -> str:
    """Return the name of the flow a task graph runs as: ``htdag.<graph_id>``."""
    return f"htdag.{UUID(str(graph_id))}"


# --------------------------------------------------------------------------------------------
# Calling decomposers
# --------------------------------------------------------------------------------------------


def run_decomposer(
    decomposer: Decomposer, text: str, timeout: float, *, limit: float | None = None
) -> Any:
    """Call ``decomposer(text)`` (sync, async, or returning an awaitable) within ``timeout`` s.

    ``limit`` is the whole decomposition's timeout, which the error message names (default:
    ``timeout``; several calls share one limit).

    The call runs in a helper thread so that a hung decomposer cannot hang the caller: an async
    one is cancelled at the timeout; a sync one cannot be interrupted in Python and is left to
    finish on its own (a daemon thread; its result is discarded). Raises DecompositionTimeout,
    or DecompositionError wrapping what the decomposer raised.
    """
    limit = timeout if limit is None else limit
    if timeout <= 0:
        raise DecompositionTimeout(
            f"the decomposition took longer than {limit:g} s; no time left for {_short(text)}"
        )
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            result = decomposer(text)
            if inspect.isawaitable(result):
                awaitable = result

                async def bounded() -> Any:
                    return await asyncio.wait_for(awaitable, timeout)

                result = asyncio.run(bounded())
            outcome["value"] = result
        except BaseException as exc:  # reported to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=call, name="sw-decomposer", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive() or isinstance(outcome.get("error"), TimeoutError):
        raise DecompositionTimeout(
            f"the decomposer did not answer within {limit:g} s for {_short(text)}",
            hint="Raise the timeout, or make the decomposer faster (a smaller model, fewer rules).",
        )
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, WorkflowError):
            raise exc
        raise DecompositionError(
            f"the decomposer failed for {_short(text)}: {type(exc).__name__}: {exc}"
        ) from exc
    return outcome.get("value")


def _short(text: str, limit: int = 60) -> str:
    """Quote ``text`` for a message, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _task_list(raw: Any, where: str) -> list[Any]:
    """Accept a list of tasks, ``{"tasks": [...]}`` or the seed's ``("ok", [...])``."""
    if isinstance(raw, tuple) and len(raw) == 2 and raw[0] in ("ok", "error"):
        if raw[0] == "error":
            raise DecompositionError(f"the decomposer reported an error for {where}: {raw[1]}")
        raw = raw[1]
    if isinstance(raw, Mapping) and "tasks" in raw:
        raw = raw["tasks"]
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise DecompositionError(
            f"the decomposer must return a list of task dicts for {where},"
            f" got {type(raw).__name__}",
            hint='Return e.g. [{"id": "analyze", "description": "...", "depends_on": []}].',
        )
    return list(raw)


def _check_node(raw: Any, where: str) -> dict[str, Any]:
    """Check one task dict's fields and return a normalised copy (subtasks still raw)."""
    if not isinstance(raw, Mapping):
        raise DecompositionError(f"each task must be a dict; {where} has {raw!r}")
    task_id = raw.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise DecompositionError(
            f"a task of {where} has no string id: {dict(raw)!r}",
            hint="Every task needs an id such as 'analyze'.",
        )
    if not STEP_NAME.match(task_id) or task_id == "run":
        raise DecompositionError(
            f"task id {task_id!r} of {where} is not a valid step name",
            code="WF001",
            hint='Task ids must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$ and not be "run"'
            " (snake_case, at most 63 characters).",
        )
    description = raw.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise DecompositionError(f"task {task_id}: description must be a string")
    deps = raw.get("depends_on", [])
    if deps is None:
        deps = []
    if isinstance(deps, str | bytes) or not isinstance(deps, Iterable):
        raise DecompositionError(
            f"task {task_id}: depends_on must be a list of task ids, got {deps!r}"
        )
    deps = list(deps)
    for dep in deps:
        if not isinstance(dep, str):
            raise DecompositionError(f"task {task_id}: depends_on has a non-string entry {dep!r}")
    subtasks = raw.get("subtasks", [])
    if subtasks is None:
        subtasks = []
    if isinstance(subtasks, str | bytes | Mapping) or not isinstance(subtasks, Sequence):
        raise DecompositionError(f"task {task_id}: subtasks must be a list of task dicts")
    complex_ = raw.get("complex", False)
    if not isinstance(complex_, bool):
        raise DecompositionError(f"task {task_id}: complex must be true or false")
    extra = {k: v for k, v in raw.items() if k not in _STRUCTURE_KEYS}
    return {
        "id": task_id,
        "description": description,
        "depends_on": list(dict.fromkeys(deps)),
        "subtasks": list(subtasks),
        "complex": complex_,
        **({"data": extra} if extra else {}),
    }


@dataclass
class _Decomposition:
    """State of one ``decompose_goal`` call: the decomposer, the limits, the deadline."""

    decomposer: Decomposer
    max_depth: int
    timeout: float
    deadline: float = field(default=0.0)
    calls: int = field(default=0)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    def ask(self, text: str, where: str) -> list[Any]:
        """Ask the decomposer about ``text`` within the time left; return its task list."""
        self.calls += 1
        raw = run_decomposer(
            self.decomposer, text, self.deadline - time.monotonic(), limit=self.timeout
        )
        return _task_list(raw, where)

    def build(self, raws: list[Any], depth: int, where: str, prefix: str) -> list[dict[str, Any]]:
        """Turn raw task dicts at ``depth`` into checked nodes, decomposing complex ones."""
        if depth >= self.max_depth:
            raise DecompositionError(
                f"{where} nests tasks {depth + 1} levels deep; max_depth is {self.max_depth}",
                hint="Raise max_depth or flatten the decomposition.",
            )
        nodes = [_check_node(raw, where) for raw in raws]
        if prefix:
            # Subtasks the decomposer gave for a complex task: make their ids (and the
            # dependencies among them) unique in the whole graph by prefixing the parent's id.
            local = {n["id"] for n in nodes}
            for n in nodes:
                n["id"] = self._prefixed(prefix, n["id"])
                n["depends_on"] = [
                    self._prefixed(prefix, d) if d in local else d for d in n["depends_on"]
                ]
        for n in nodes:
            sub_where = f"subtasks of task {n['id']}"
            if n["subtasks"]:
                n["subtasks"] = self.build(n["subtasks"], depth + 1, sub_where, "")
            elif n["complex"] and depth + 1 < self.max_depth:
                text = n["description"] or n["id"]
                raws_below = self.ask(text, sub_where)
                if not raws_below:
                    raise DecompositionError(
                        f"the decomposer returned no subtasks for complex task {n['id']}",
                        code="WF016",
                    )
                n["subtasks"] = self.build(raws_below, depth + 1, sub_where, n["id"])
        return nodes

    @staticmethod
    def _prefixed(prefix: str, task_id: str) -> str:
        """Return ``prefix__task_id`` (checked as a step name later, like any id)."""
        name = f"{prefix}__{task_id}"
        if not STEP_NAME.match(name):
            raise DecompositionError(
                f"subtask {task_id!r} of complex task {prefix!r} would get the id {name!r},"
                " which is longer than a step name may be (63 characters)",
                code="WF001",
                hint="Use shorter task ids, or a smaller max_depth.",
            )
        return name


def flatten_tasks(nodes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flatten a checked task tree into the leaf tasks that run, with expanded dependencies.

    Each leaf gets ``depth`` and ``parent`` (None at the top); its ``depends_on`` becomes the
    leaves under every task it or any of its ancestors depends on. Raises DecompositionError:
    WF016 no tasks, WF004 duplicate id, WF003 unknown dependency, WF006 self dependency, WF005
    a dependency on an ancestor or a descendant, or a cycle among the leaves.
    """
    if not nodes:
        raise DecompositionError("the decomposer returned no tasks", code="WF016")
    by_id: dict[str, Mapping[str, Any]] = {}
    parent: dict[str, str | None] = {}
    depth: dict[str, int] = {}
    order: list[str] = []

    def index(level: Sequence[Mapping[str, Any]], up: str | None, d: int) -> None:
        for n in level:
            if n["id"] in by_id:
                raise DecompositionError(f"task id {n['id']} is used more than once", code="WF004")
            by_id[n["id"]] = n
            parent[n["id"]] = up
            depth[n["id"]] = d
            order.append(n["id"])
            index(n.get("subtasks") or [], n["id"], d + 1)

    index(nodes, None, 0)

    leaves_of: dict[str, list[str]] = {}

    def leaves(task_id: str) -> list[str]:
        found = leaves_of.get(task_id)
        if found is None:
            subs = by_id[task_id].get("subtasks") or []
            found = [task_id] if not subs else [x for s in subs for x in leaves(s["id"])]
            leaves_of[task_id] = found
        return found

    def ancestors(task_id: str) -> list[str]:
        up, chain = parent[task_id], []
        while up is not None:
            chain.append(up)
            up = parent[up]
        return chain

    for task_id in order:
        for dep in by_id[task_id]["depends_on"]:
            if dep == task_id:
                raise DecompositionError(f"task {task_id} depends on itself", code="WF006")
            if dep not in by_id:
                raise DecompositionError(
                    f"task {task_id} depends on unknown task {dep}",
                    code="WF003",
                    hint="Known task ids: "
                    + ", ".join(sorted(by_id)[:20])
                    + (" ..." if len(by_id) > 20 else ""),
                )
            if dep in ancestors(task_id):
                raise DecompositionError(
                    f"task {task_id} depends on {dep}, which contains it (a cycle)", code="WF005"
                )
            if task_id in ancestors(dep):
                raise DecompositionError(
                    f"task {task_id} depends on its own subtask {dep} (a cycle)", code="WF005"
                )

    flat: list[dict[str, Any]] = []
    for task_id in order:
        node = by_id[task_id]
        if node.get("subtasks"):
            continue
        deps: set[str] = set()
        for holder in [task_id, *ancestors(task_id)]:
            for dep in by_id[holder]["depends_on"]:
                deps.update(leaves(dep))
        flat.append(
            {
                **node.get("data", {}),
                "id": task_id,
                "description": node["description"],
                "depends_on": sorted(deps),
                "depth": depth[task_id],
                "parent": parent[task_id],
            }
        )
    _check_acyclic(flat)
    return flat


def _check_acyclic(tasks: Sequence[Mapping[str, Any]]) -> None:
    """Raise DecompositionError (WF005) naming the tasks on or behind a cycle, if any."""
    placed: set[str] = set()
    pending = list(tasks)
    while pending:
        ready = [t for t in pending if all(d in placed for d in t["depends_on"])]
        if not ready:
            stuck = ", ".join(sorted(t["id"] for t in pending))
            raise DecompositionError(
                f"the tasks have a dependency cycle among: {stuck}", code="WF005"
            )
        placed.update(t["id"] for t in ready)
        pending = [t for t in pending if t["id"] not in placed]


def _display_tree(nodes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the tree as stored for display: id, description, depends_on, subtasks."""
    return [
        {
            "id": n["id"],
            "description": n["description"],
            "depends_on": list(n["depends_on"]),
            "subtasks": _display_tree(n.get("subtasks") or []),
        }
        for n in nodes
    ]


# --------------------------------------------------------------------------------------------
# Stored graphs
# --------------------------------------------------------------------------------------------


def _timestamp(value: Any) -> datetime | None:
    """Parse a timestamp that came through jsonb (ISO 8601 text), or pass None through."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class TaskGraph:
    """A stored task graph (``workflow.get_task_graph``): what a goal was decomposed into.

    ``tasks`` are the flattened leaf tasks that run (``id``, ``description``, ``depends_on``,
    ``depth``, ``parent``, and any other keys the decomposer gave); ``hierarchy`` is the tree as
    decomposed. ``approved_at`` is None until approved; ``flow_slug``/``last_run_id`` are set once
    it ran.
    """

    graph_id: UUID
    goal: str
    tasks: tuple[dict[str, Any], ...]
    hierarchy: tuple[dict[str, Any], ...]
    decomposed_at: datetime
    approved_at: datetime | None
    flow_slug: str | None
    last_run_id: UUID | None
    created_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskGraph:
        """Build from the JSON object ``workflow.get_task_graph`` returns."""
        decomposed = _timestamp(data["decomposed_at"])
        created = _timestamp(data["created_at"])
        assert decomposed is not None and created is not None
        return cls(
            graph_id=UUID(str(data["graph_id"])),
            goal=data["goal"],
            tasks=tuple(data["tasks"]),
            hierarchy=tuple(data["hierarchy"]),
            decomposed_at=decomposed,
            approved_at=_timestamp(data.get("approved_at")),
            flow_slug=data.get("flow_slug"),
            last_run_id=UUID(str(data["last_run_id"])) if data.get("last_run_id") else None,
            created_at=created,
        )

    @property
    def approved(self) -> bool:
        """Whether the graph was approved for execution."""
        return self.approved_at is not None

    def task(self, task_id: str) -> dict[str, Any]:
        """Return the leaf task ``task_id``; KeyError if the graph has none."""
        for t in self.tasks:
            if t["id"] == task_id:
                return t
        raise KeyError(f"task graph {self.graph_id} has no task {task_id!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the graph as plain JSON-ready data (ids and times as strings)."""
        return {
            "graph_id": str(self.graph_id),
            "goal": self.goal,
            "tasks": list(self.tasks),
            "hierarchy": list(self.hierarchy),
            "decomposed_at": self.decomposed_at.isoformat(),
            "approved_at": self.approved_at.isoformat() if self.approved_at else None,
            "flow_slug": self.flow_slug,
            "last_run_id": str(self.last_run_id) if self.last_run_id else None,
            "created_at": self.created_at.isoformat(),
        }

    def tree(self) -> str:
        """Render the graph for people: the goal, then the task hierarchy as a tree."""
        state = "approved" if self.approved else "not approved"
        lines = [f"{self.goal}", f"graph {self.graph_id} · {len(self.tasks)} tasks · {state}"]

        def walk(nodes: Sequence[Mapping[str, Any]], indent: str) -> None:
            for i, n in enumerate(nodes):
                last = i == len(nodes) - 1
                text = n["id"] + (f": {n['description']}" if n.get("description") else "")
                if n.get("depends_on"):
                    text += f"  [after {', '.join(n['depends_on'])}]"
                lines.append(f"{indent}{'└── ' if last else '├── '}{text}")
                walk(n.get("subtasks") or [], indent + ("    " if last else "│   "))

        walk(self.hierarchy, "")
        return "\n".join(lines)


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
        state = _Decomposition(decomposer, max_depth, timeout)
        nodes = state.build(state.ask(goal, "the goal"), 0, "the goal", "")
        flat = flatten_tasks(nodes)
        graph_id = self.client.store_task_graph(goal, flat, _display_tree(nodes))
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
        options it was first registered with: running it again through an Orchestrator with
        other options raises FlowShapeMismatch (decompose again for a new graph instead).
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
    """The one-call wrapper of the seed: goal in, result out (``compose_from_goal``).

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
