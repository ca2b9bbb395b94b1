"""A flow whose shape is decided at run time: built with FlowBuilder, run with execute_dynamic.

The flow is stored in the database step by step as it is built (``singularity-workflow flows``
lists it; ``select workflow.get_flow('...')`` shows it in psql). ``split`` breaks the text into
words, ``score`` runs once per word (a map step), ``total`` adds the scores up::

    export DATABASE_URL=postgresql://user@localhost:5432/app
    singularity-workflow migrate
    python examples/dynamic_flow.py "the quick brown fox"

Every step is local by default: this process runs them. With ``--distributed`` the ``score``
step goes to workers of queue ``default``. A worker in another process finds the step functions
of a dynamic flow by the flow's name: this module registers them at import with
``register_handlers``, so start a worker that imports it (from the repository root), then run::

    singularity-workflow worker -q default -i examples.dynamic_flow
    python examples/dynamic_flow.py --distributed "the quick brown fox"

``--demo`` runs such a worker in a thread of this process instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from singularity_workflow import (
    Client,
    FlowBuilder,
    FlowExists,
    Worker,
    execute_dynamic,
    register_handlers,
)

#: The distributed variant has a fixed name, so that workers can register its functions.
DISTRIBUTED_FLOW = "examples.dynamic_flow"


def split(input: dict[str, Any]) -> list[str]:
    """Break the run's text into words (the array ``score`` maps over)."""
    return str(input["run"]["text"]).split()


def score(word: str) -> int:
    """Score one word (a map task receives its element, not the input dict)."""
    return sum(ord(c) - ord("a") + 1 for c in word.lower() if c.isalpha())


def total(input: dict[str, Any]) -> dict[str, Any]:
    """Add up the scores (``input["score"]`` is the list of map outputs, in word order)."""
    return {"scores": input["score"], "total": sum(input["score"])}


STEP_FUNCTIONS = {"split": split, "score": score, "total": total}

# What a worker process needs: the functions of the dynamic flow, under the flow's name.
register_handlers(DISTRIBUTED_FLOW, STEP_FUNCTIONS)


def build(builder: FlowBuilder, name: str, *, distributed: bool) -> str:
    """Build the flow step by step, as an agent deciding its plan would; return its id."""
    flow = builder.create_flow(name)
    builder.add_step(flow, "split")
    builder.add_step(flow, "score", ["split"], map=True,
                     execution="distributed" if distributed else "local")
    builder.add_step(flow, "total", ["score"])
    return flow


def main(argv: list[str] | None = None) -> int:
    """Build the flow (or reuse the distributed one), run it, print the output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", default="the quick brown fox")
    parser.add_argument("--distributed", action="store_true",
                        help="run `score` on workers of queue default")
    parser.add_argument("--demo", action="store_true",
                        help="with --distributed: serve the queue from a thread of this process")
    args = parser.parse_args(argv)

    client = Client()  # DATABASE_URL
    builder = FlowBuilder(client)
    if args.distributed or args.demo:
        try:
            flow = build(builder, DISTRIBUTED_FLOW, distributed=True)
        except FlowExists:
            flow = DISTRIBUTED_FLOW  # built by an earlier run; flows are immutable once run
    else:
        # A fresh name per run, as for a plan an agent made up just now.
        flow = build(builder, f"examples.dynamic.{uuid.uuid4().hex[:12]}", distributed=False)
    print(f"flow {flow}: " + ", ".join(s["slug"] for s in builder.get_flow(flow)["steps"]))

    worker = Worker(client.conninfo, ["default"], poll_interval=1) if args.demo else None
    if worker is not None:
        worker.run_in_thread()
    try:
        result = execute_dynamic(flow, {"text": args.text}, STEP_FUNCTIONS, client=client,
                                 timeout=60)
    finally:
        if worker is not None:
            worker.stop()
            worker.join(30)
    print(f"run {result.run_id} completed")
    print(json.dumps(result.output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
