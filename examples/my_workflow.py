"""The Elixir library's three-step workflow (fetch -> process -> save), run with ``execute``.

Every step is local (the default): this process runs them, one after the other, as the
dependencies allow, and ``execute`` returns once the run is over. The run's state lives in
PostgreSQL the whole time; ``singularity-workflow status <run id>`` shows it from anywhere.

Run it against a database with the schema installed::

    export DATABASE_URL=postgresql://user@localhost:5432/app
    singularity-workflow migrate          # once: installs (or upgrades) the schema
    python examples/my_workflow.py
"""

from __future__ import annotations

import json
import sys
from typing import Any

import psycopg

from singularity_workflow import Client, execute


class MyWorkflow:
    """The Elixir library's list form: ``__workflow_steps__`` returns (name, function, options)."""

    # An explicit flow name: the default (module + class name) would differ between
    # ``python examples/my_workflow.py`` (module __main__) and an import of this module.
    __workflow_slug__ = "examples.my_workflow"

    @staticmethod
    def __workflow_steps__() -> list[tuple[str, Any, dict[str, Any]]]:
        """Declare the steps and their dependencies."""
        return [
            ("fetch", MyWorkflow.fetch, {"depends_on": []}),
            ("process", MyWorkflow.process, {"depends_on": ["fetch"]}),
            ("save", MyWorkflow.save, {"depends_on": ["process"]}),
        ]

    @staticmethod
    def fetch(input: dict[str, Any]) -> dict[str, Any]:
        """Load data for the user named in the run input (``input["run"]``)."""
        return {"data": f"orders of user {input['run']['user_id']}"}

    @staticmethod
    def process(input: dict[str, Any]) -> dict[str, Any]:
        """Work on what ``fetch`` returned (``input["fetch"]``)."""
        return {"result": input["fetch"]["data"].upper()}

    @staticmethod
    def save(input: dict[str, Any]) -> dict[str, Any]:
        """Store the result; the last step's output becomes the run's output."""
        return {"saved": True, "result": input["process"]["result"]}


def main() -> int:
    """Execute one run and print its id and output."""
    client = Client()  # DATABASE_URL
    try:
        result = execute(MyWorkflow, {"user_id": 123}, client=client, timeout=60)
    except psycopg.errors.UndefinedFunction:
        print("the schema is not installed: run `singularity-workflow migrate` first",
              file=sys.stderr)
        return 1
    print(f"run {result.run_id} completed")
    print(json.dumps(result.output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
