"""Goal-driven orchestration planned by an LLM over an OpenAI-compatible chat endpoint.

The decomposer (``OpenAIChatDecomposer``) asks the model for a JSON task list; the orchestrator
checks it (a malformed plan is a clear error, never a silently shortened one), stores and
prints the graph, then runs every task with a fallback that receives its description. Point it
at any OpenAI-compatible server with three environment variables::

    export DATABASE_URL=postgresql://user@localhost:5432/app
    export OPENAI_BASE_URL=https://api.openai.com/v1     # or http://localhost:11434/v1 (Ollama)
    export OPENAI_API_KEY=sk-...                         # empty for servers that need none
    export OPENAI_MODEL=gpt-4o-mini
    singularity-workflow migrate
    python examples/goal_llm.py "Write a blog post about PostgreSQL queues"

``--fake`` starts a small fake endpoint on 127.0.0.1 (``FakeChatServer``) instead, so the
example runs with no network and no key. ``--plan-only`` stops after storing the plan.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from singularity_workflow import Client, Orchestrator
from singularity_workflow.goals.decomposers import FakeChatServer, OpenAIChatDecomposer


def do_task(task: dict[str, Any], input: dict[str, Any]) -> dict[str, Any]:
    """Carry out one task (here: record it; an agent would call the model with the description)."""
    return {"task": task["id"], "did": task["description"],
            "after": sorted(k for k in input if k != "run")}


def main(argv: list[str] | None = None) -> int:
    """Plan with the model, print the tree, approve, execute, print the output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("goal", nargs="?", default="Write a blog post about PostgreSQL queues")
    parser.add_argument("--fake", action="store_true", help="use a local fake chat endpoint")
    parser.add_argument("--plan-only", action="store_true", help="store and print the plan only")
    args = parser.parse_args(argv)

    fake = FakeChatServer() if args.fake else None
    if fake is not None:
        fake.start()
        url, key, model = fake.url, "", "fake-model"
    else:
        url = os.environ.get("OPENAI_BASE_URL", "")
        key = os.environ.get("OPENAI_API_KEY", "")
        model = os.environ.get("OPENAI_MODEL", "")
        if not url or not model:
            print("set OPENAI_BASE_URL and OPENAI_MODEL (and OPENAI_API_KEY), or use --fake",
                  file=sys.stderr)
            return 2
    try:
        decomposer = OpenAIChatDecomposer(url, key, model, timeout=120)
        orchestrator = Orchestrator(Client())  # DATABASE_URL
        graph = orchestrator.decompose_goal(args.goal, decomposer, timeout=180)
    finally:
        if fake is not None:
            fake.stop()
    print(graph.tree())
    if args.plan_only:
        return 0
    orchestrator.approve(graph.graph_id)
    result = orchestrator.execute_graph(graph.graph_id, fallback=do_task, timeout=120)
    print(f"run {result.run_id} completed")
    print(json.dumps(result.output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
