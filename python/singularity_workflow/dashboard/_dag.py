"""The run page's DAG: a layered layout of a flow's steps, drawn as SVG by the template.

Steps are placed in columns by dependency depth (a root step in column 0, any other step one
column right of its deepest dependency), so every edge points rightwards and nothing needs a
layout library or a front-end build. Within a column, steps are ordered by the mean row of their
dependencies (one barycentre pass), which untangles the usual fan-out/fan-in shapes; ties keep
the flow's declared order. The layout depends only on the flow's shape, which never changes for
a slug (registering another shape is refused), so it is computed once per flow and cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Edge", "Layout", "Node", "display_state", "layout_flow"]

NODE_W: Final = 176
NODE_H: Final = 56
COL_GAP: Final = 72
ROW_GAP: Final = 20
MARGIN: Final = 12


@dataclass(frozen=True, slots=True)
class Node:
    """One step's box: its slug, type, column/row and top-left corner."""

    step: str
    type: str
    column: int
    row: int
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Edge:
    """A dependency arrow from ``source`` (the dependency) to ``target``, as an SVG path."""

    source: str
    target: str
    path: str


@dataclass(frozen=True, slots=True)
class Layout:
    """Nodes, edges and the drawing's size in pixels."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def layout_flow(steps: Sequence[Mapping[str, Any]]) -> Layout:
    """Lay out the steps of ``workflow.get_flow``'s JSON (each with slug, depends_on, type)."""
    order = {s["slug"]: i for i, s in enumerate(steps)}
    deps = {s["slug"]: [d for d in s.get("depends_on") or () if d in order] for s in steps}
    depth: dict[str, int] = {}
    # Steps come in an order where dependencies precede dependents (the engine requires a
    # dependency to exist when a step is added), but do not rely on it: resolve iteratively.
    pending = list(order)
    while pending:
        progressed = False
        for slug in list(pending):
            if all(d in depth for d in deps[slug]):
                depth[slug] = 1 + max((depth[d] for d in deps[slug]), default=-1)
                pending.remove(slug)
                progressed = True
        if not progressed:  # a cycle cannot be registered; place leftovers in a last column
            last = 1 + max(depth.values(), default=-1)
            for slug in pending:
                depth[slug] = last
            break
    columns: dict[int, list[str]] = {}
    for slug in sorted(order, key=order.__getitem__):
        columns.setdefault(depth[slug], []).append(slug)
    row: dict[str, int] = {}
    for col in sorted(columns):
        members = columns[col]

        def barycentre(slug: str) -> tuple[float, int]:
            parents = [row[d] for d in deps[slug] if d in row]
            mean = sum(parents) / len(parents) if parents else float(order[slug])
            return (mean, order[slug])

        members.sort(key=barycentre)
        for i, slug in enumerate(members):
            row[slug] = i
    tallest = max((len(m) for m in columns.values()), default=0)
    height = MARGIN * 2 + tallest * NODE_H + max(tallest - 1, 0) * ROW_GAP
    nodes: dict[str, Node] = {}
    types = {s["slug"]: s.get("type", "single") for s in steps}
    for col, members in columns.items():
        # Centre shorter columns vertically against the tallest one.
        used = len(members) * NODE_H + (len(members) - 1) * ROW_GAP
        top = (height - used) // 2
        for i, slug in enumerate(members):
            nodes[slug] = Node(
                slug, types[slug], col, i, MARGIN + col * (NODE_W + COL_GAP),
                top + i * (NODE_H + ROW_GAP),
            )
    edges = []
    for slug in sorted(order, key=order.__getitem__):
        for dep in deps[slug]:
            a, b = nodes[dep], nodes[slug]
            x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
            x2, y2 = b.x - 6, b.y + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append(Edge(dep, slug, f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"))
    width = MARGIN * 2 + len(columns) * NODE_W + max(len(columns) - 1, 0) * COL_GAP
    ordered = tuple(sorted(nodes.values(), key=lambda n: order[n.step]))
    return Layout(ordered, tuple(edges), max(width, NODE_W + 2 * MARGIN), max(height, NODE_H))


def display_state(step_status: str, run_state: str) -> str:
    """Map a step's stored status to queued, running, completed, failed or skipped.

    ``created`` (waiting on dependencies or in its queue) shows as queued while the run is alive
    and as skipped once the run ended (it will never run); a ``started`` step of an ended run
    was cut short by the failure or cancel, and shows as skipped too.
    """
    ended = run_state in ("completed", "failed", "cancelled")
    if step_status == "completed":
        return "completed"
    if step_status == "failed":
        return "failed"
    if ended:
        return "skipped"
    return "running" if step_status == "started" else "queued"
