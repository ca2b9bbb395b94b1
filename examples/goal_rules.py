r"""Goal-driven orchestration with a rule-based decomposer: plan, preview, approve, execute.

The decomposer (``singularity_workflow.goals.decomposers.rule_based_decomposer``) matches the goal
against regular expressions and returns a task template; its ``implement`` task is marked
complex, so the orchestrator asks the decomposer again for its subtasks. The graph is stored
and printed as a tree before it runs; the run executes every task in this process: ``test`` with
its own function, the others with a fallback that receives each task's description (where an
LLM agent would do the work)::

    export DATABASE_URL=postgresql://user@localhost:5432/app
    singularity-workflow migrate
    python examples/goal_rules.py "Build user authentication"

The same from the shell, with a human approving in between::

    singularity-workflow goal plan "Build user authentication" \\
        --decomposer singularity_workflow.goals.decomposers:rule_based_decomposer
    singularity-workflow goal approve <graph id>
    singularity-workflow goal run <graph id> --steps examples.goal_rules:STEP_FUNCTIONS \\
        --fallback examples.goal_rules:do_task
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from singularity_workflow import Client, Orchestrator
from singularity_workflow.goals.decomposers import rule_based_decomposer


def do_task(task: dict[str, Any], input: dict[str, Any]) -> dict[str, Any]:
    """Do any task from its description (the fallback); notes what it built upon."""
    done_before = sorted(k for k in input if k != "run")
    return {"did": task["description"], "after": done_before}


def run_tests(input: dict[str, Any]) -> dict[str, Any]:
    """Check that the implementation happened (the one task with a function of its own)."""
    return {"passed": bool(input.get("implement__integrate")), "goal": input["run"]["goal"]}


#: Step functions keyed by task id; tasks not listed run ``do_task``.
STEP_FUNCTIONS = {"test": run_tests}


def main(argv: list[str] | None = None) -> int:
    """Plan the goal, show the tree, approve, execute, print the output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("goal", nargs="?", default="Build user authentication")
    args = parser.parse_args(argv)

    orchestrator = Orchestrator(Client())  # DATABASE_URL
    graph = orchestrator.decompose_goal(args.goal, rule_based_decomposer, max_depth=2)
    print(graph.tree())
    orchestrator.approve(graph.graph_id)  # after a preview; here without asking
    result = orchestrator.execute_graph(graph.graph_id, STEP_FUNCTIONS, fallback=do_task,
                                        timeout=60)
    print(f"run {result.run_id} completed")
    print(json.dumps(result.output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
