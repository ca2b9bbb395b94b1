"""Distributed steps: a CPU queue and a GPU queue, served by separate workers.

``analyze`` runs on workers of the ``cpu_workers`` queue; ``train_model`` runs on workers of
``gpu_workers`` that advertise the ``gpu`` resource (a worker without it never claims the
step). ``report`` is local: it runs in the process that called ``execute``. Start the workers
(from the repository root, so that ``examples.distributed`` imports), each in its own shell or
on its own machine::

    export DATABASE_URL=postgresql://user@localhost:5432/app
    singularity-workflow migrate
    singularity-workflow worker -q cpu_workers -i examples.distributed
    singularity-workflow worker -q gpu_workers --resource gpu -i examples.distributed

then run::

    python examples/distributed.py

Or, to see it all in one command, ``python examples/distributed.py --demo`` starts both workers
in threads of this process first.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from singularity_workflow import Client, Worker, Workflow, execute, step


class TrainingPipeline(Workflow):
    """Analyze a dataset on a CPU worker, train on a GPU worker, report locally."""

    # Fixed, so that this file run as a script and the workers importing
    # ``examples.distributed`` agree on the flow's name.
    slug = "examples.distributed"

    @step(execution="distributed", queue="cpu_workers")
    def analyze(self, input: dict[str, Any]) -> dict[str, Any]:
        """Summarise the dataset named in the run input."""
        rows = list(range(input["run"]["rows"]))
        return {"rows": len(rows), "mean": sum(rows) / len(rows), "host": _where()}

    @step(depends_on=["analyze"], execution="distributed", queue="gpu_workers",
          resources={"gpu": True}, timeout=300)
    def train_model(self, input: dict[str, Any]) -> dict[str, Any]:
        """Train on the analysed data (a stand-in for real GPU work)."""
        stats = input["analyze"]
        return {"model": f"model-{stats['rows']}", "loss": round(1 / (1 + stats["mean"]), 4),
                "host": _where()}

    @step(depends_on=["analyze", "train_model"])
    def report(self, input: dict[str, Any]) -> dict[str, Any]:
        """Combine both results, in the executing process."""
        return {"dataset": input["analyze"], "model": input["train_model"], "host": _where()}


def _where() -> str:
    """Name the process a step ran in (to see the work move between workers)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def main(argv: list[str] | None = None) -> int:
    """Execute one run (with ``--demo``: start both workers in this process first)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true",
                        help="serve both queues from worker threads of this process")
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args(argv)

    client = Client()  # DATABASE_URL
    workers: list[Worker] = []
    if args.demo:
        workers = [
            Worker(client.conninfo, ["cpu_workers"], poll_interval=1),
            Worker(client.conninfo, ["gpu_workers"], resources=["gpu"], poll_interval=1),
        ]
        for w in workers:
            w.run_in_thread()
    try:
        result = execute(TrainingPipeline, {"rows": args.rows}, client=client, timeout=120)
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            w.join(10)
    print(f"run {result.run_id} completed")
    print(json.dumps(result.output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
