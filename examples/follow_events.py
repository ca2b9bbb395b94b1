"""Follow a workflow's progress live from another process, through PostgreSQL alone.

One process runs a three-step workflow; another listens on ``workflow_run_events`` and prints
each run and step event as it is committed, without polling. The events come from the engine
(``workflow.events``), so the follower needs nothing from the runner but the database: it could
be a dashboard on another machine. If its connection drops, it reconnects and prints what it
missed, once.

Run it against a database with the schema installed (``singularity-workflow migrate``)::

    export DATABASE_URL=postgresql://user@localhost:5432/app
    python examples/follow_events.py follow      # terminal 1: prints events until Ctrl-C
    python examples/follow_events.py run         # terminal 2: runs the workflow once

or both in one command (the follower is started as a second process, and stops at the run's
end)::

    python examples/follow_events.py --demo

Each event prints as ``event <name> <run id> <step or ->``. The same feed is available from the
command line: ``singularity-workflow listen workflow_run_events``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

from singularity_workflow import Client, WorkflowEvent, execute, listen


class Report:
    """Three local steps, each pausing a little so the events are seen to arrive one by one."""

    __workflow_slug__ = "examples.follow_events"

    @staticmethod
    def __workflow_steps__() -> list[tuple[str, Any, dict[str, Any]]]:
        """Declare collect -> analyse -> publish."""
        return [
            ("collect", Report.collect, {}),
            ("analyse", Report.analyse, {"depends_on": ["collect"]}),
            ("publish", Report.publish, {"depends_on": ["analyse"]}),
        ]

    @staticmethod
    def collect(input: dict[str, Any]) -> dict[str, Any]:
        """Gather the numbers the run input asks for."""
        time.sleep(0.2)
        return {"numbers": list(range(input["run"]["count"]))}

    @staticmethod
    def analyse(input: dict[str, Any]) -> dict[str, Any]:
        """Summarise them."""
        time.sleep(0.2)
        return {"total": sum(input["collect"]["numbers"])}

    @staticmethod
    def publish(input: dict[str, Any]) -> dict[str, Any]:
        """Return the report (the run's output)."""
        time.sleep(0.2)
        return {"report": f"total = {input['analyse']['total']}"}


RUN_ENDS = {"run_completed", "run_failed", "run_cancelled"}


def follow(until_end: bool) -> int:
    """Print this example's events as they happen; with ``until_end``, stop after a run ends."""
    with listen("workflow_run_events") as listener:
        print("following workflow_run_events", file=sys.stderr, flush=True)
        try:
            for item in listener:
                if not isinstance(item, WorkflowEvent):
                    continue
                if item.flow_slug != Report.__workflow_slug__:
                    continue
                print(f"event {item.event} {item.run_id} {item.step_slug or '-'}", flush=True)
                if until_end and item.event in RUN_ENDS:
                    return 0
        except KeyboardInterrupt:
            pass
    return 0


def run() -> int:
    """Run the workflow once in this process and print its output."""
    result = execute(Report, {"count": 10}, client=Client(), timeout=60)
    print(f"run {result.run_id} output {result.output}", flush=True)
    return 0


def demo() -> int:
    """Start a follower process, run the workflow here, and wait for the follower to finish."""
    follower = subprocess.Popen(
        [sys.executable, __file__, "follow", "--until-end"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert follower.stderr is not None
        follower.stderr.readline()  # "following ...": it is listening, nothing will be missed
        run()
        return follower.wait(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()


def main() -> int:
    """Parse the command line: ``follow``, ``run`` or ``--demo``."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("mode", nargs="?", choices=["follow", "run"])
    parser.add_argument("--demo", action="store_true", help="follow and run, in two processes")
    parser.add_argument("--until-end", action="store_true", help="follow: stop at a run's end")
    args = parser.parse_args()
    if args.demo:
        return demo()
    if args.mode == "follow":
        return follow(args.until_end)
    if args.mode == "run":
        return run()
    parser.error("give a mode (follow or run) or --demo")
    return 2


if __name__ == "__main__":
    sys.exit(main())
