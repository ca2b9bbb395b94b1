r"""CLI commands for goal-driven orchestration: ``goal plan | show | approve | run``.

The preview-and-approve loop from a shell::

    singularity-workflow goal plan "Build user authentication" \\
        --decomposer singularity_workflow.decomposers:rule_based_decomposer
    singularity-workflow goal approve <graph id>
    singularity-workflow goal run <graph id> --steps my_app.tasks:STEP_FUNCTIONS \\
        --fallback my_app.tasks:run_task

``module:attribute`` references are imported with the current directory on ``sys.path`` (as
``python -m`` would), so they find the project the command runs in. Added to the group by
``cli.py``; errors are shown by the group as one ``error:`` line with exit status 1.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import click

from singularity_workflow.cli._base import client_of
from singularity_workflow.goals import Orchestrator, TaskGraph
from singularity_workflow.worker import import_modules

__all__ = ["goal_group"]



def load_object(reference: str, option: str) -> Any:
    """Import ``module:attribute`` (attribute may be dotted) and return the attribute."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise click.BadParameter(f"expected module:attribute, got {reference!r}", param_hint=option)
    try:
        import_modules([])  # puts the current directory on sys.path
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name}: {exc}", param_hint=option) from exc
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise click.BadParameter(
                f"{module_name} has no attribute {attribute}", param_hint=option
            ) from None
    return obj


def _show(graph: TaskGraph, as_json: bool) -> None:
    """Print a graph as a tree (or as JSON)."""
    if as_json:
        click.echo(json.dumps(graph.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(graph.tree())


@click.group("goal")
def goal_group() -> None:
    """Plan goals into task graphs, review and approve them, run them."""


@goal_group.command("plan")
@click.argument("goal")
@click.option("--decomposer", "decomposer_ref", required=True, metavar="MODULE:FUNCTION",
              help="The decomposer: goal -> list of task dicts (sync or async).")
@click.option("--max-depth", type=click.IntRange(min=1), default=3, show_default=True,
              help="Levels of subtasks allowed (1 = a flat graph).")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
              help="Seconds the whole decomposition may take.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored graph as JSON.")
@click.pass_context
def plan_command(ctx: click.Context, goal: str, decomposer_ref: str, max_depth: int,
                 timeout: float, as_json: bool) -> None:
    """Decompose GOAL, store the task graph (not approved) and print it as a tree."""
    decomposer = load_object(decomposer_ref, "--decomposer")
    if not callable(decomposer):
        raise click.BadParameter(f"{decomposer_ref} is not callable", param_hint="--decomposer")
    graph = Orchestrator(client_of(ctx)).decompose_goal(
        goal, decomposer, max_depth=max_depth, timeout=timeout
    )
    _show(graph, as_json)
    if not as_json:
        click.echo(f"\nreview it, then: singularity-workflow goal approve {graph.graph_id}",
                   err=True)


@goal_group.command("show")
@click.argument("graph_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print the graph as JSON.")
@click.pass_context
def show_command(ctx: click.Context, graph_id: UUID, as_json: bool) -> None:
    """Print a stored task graph (tree, or JSON with the flattened tasks)."""
    _show(Orchestrator(client_of(ctx)).get_graph(graph_id), as_json)


@goal_group.command("approve")
@click.argument("graph_id", type=click.UUID)
@click.pass_context
def approve_command(ctx: click.Context, graph_id: UUID) -> None:
    """Approve a stored task graph for execution (safe to repeat)."""
    graph = Orchestrator(client_of(ctx)).approve(graph_id)
    assert graph.approved_at is not None
    click.echo(f"graph {graph.graph_id} approved at {graph.approved_at.isoformat(' ', 'seconds')}")


@goal_group.command("run")
@click.argument("graph_id", type=click.UUID)
@click.option("--steps", "steps_ref", default=None, metavar="MODULE:MAPPING",
              help="Step functions keyed by task id (a dict).")
@click.option("--fallback", "fallback_ref", default=None, metavar="MODULE:FUNCTION",
              help="fallback(task, input) for tasks without a step function.")
@click.option("--input", "input_json", default="{}", show_default=True,
              help="Extra run input, as a JSON object (merged with goal and graph_id).")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=300.0, show_default=True,
              help="Seconds to wait for the run (it goes on in the database after that).")
@click.pass_context
def run_command(ctx: click.Context, graph_id: UUID, steps_ref: str | None,
                fallback_ref: str | None, input_json: str, timeout: float) -> None:
    """Run an approved task graph in this process and print its output JSON."""
    if steps_ref is None and fallback_ref is None:
        raise click.UsageError("give --steps, --fallback or both")
    steps: Mapping[str, Any] = {}
    if steps_ref is not None:
        loaded = load_object(steps_ref, "--steps")
        if not isinstance(loaded, Mapping):
            raise click.BadParameter(f"{steps_ref} is not a mapping of task id -> function",
                                     param_hint="--steps")
        steps = loaded
    fallback = load_object(fallback_ref, "--fallback") if fallback_ref else None
    try:
        extra = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--input") from exc
    if not isinstance(extra, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--input")
    result = Orchestrator(client_of(ctx)).execute_graph(
        graph_id, steps, fallback=fallback, input=extra, timeout=timeout
    )
    click.echo(f"run {result.run_id} completed", err=True)
    click.echo(json.dumps(result.output, indent=2, ensure_ascii=False, default=str))
