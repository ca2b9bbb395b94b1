"""Task graphs: what a decomposer returns, checked, flattened and stored for approval.

A *decomposer* (see :mod:`singularity_workflow.goals.decomposers`) turns a goal into task dicts
``{"id", "description", "depends_on": [...], "subtasks": [...]}``. :class:`Decomposition` asks it
(again for ``complex`` tasks, down to ``max_depth``) and checks each answer; ``flatten_tasks``
turns the tree into the flat list of leaves the orchestrator stores and runs (see
``_orchestrator`` for the rules); :class:`TaskGraph` is a stored graph read back. Nothing here
touches the database.
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

from singularity_workflow._errors import WorkflowError
from singularity_workflow.definitions import STEP_NAME

__all__ = [
    "Decomposer",
    "Decomposition",
    "DecompositionError",
    "DecompositionTimeout",
    "Fallback",
    "TaskGraph",
    "display_tree",
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
    """Accept a list of tasks, ``{"tasks": [...]}`` or the Elixir library's ``("ok", [...])``."""
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
class Decomposition:
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


def display_tree(nodes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the tree as stored for display: id, description, depends_on, subtasks."""
    return [
        {
            "id": n["id"],
            "description": n["description"],
            "depends_on": list(n["depends_on"]),
            "subtasks": display_tree(n.get("subtasks") or []),
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
