"""The examples run as documented, as real processes against a test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def env_for(db_url: str) -> dict[str, str]:
    # Not the repository root: the worker command must find examples.distributed from its
    # working directory, as it does for a user in their project.
    return dict(os.environ, DATABASE_URL=db_url, PYTHONPATH=str(REPO / "python"))


def cli() -> list[str]:
    """Return the installed ``singularity-workflow`` script (else ``python -m``)."""
    script = Path(sys.executable).parent / "singularity-workflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "singularity_workflow"]


def run_example(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env_for(db_url),
        capture_output=True, text=True, timeout=90,
    )


@pytest.mark.slow
def test_my_workflow_example_runs_the_three_step_example(db_url: str) -> None:
    done = run_example(db_url, "examples/my_workflow.py")
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    assert '"result": "ORDERS OF USER 123"' in done.stdout


@pytest.mark.slow
def test_distributed_example_demo_runs_in_one_command(db_url: str) -> None:
    done = run_example(db_url, "examples/distributed.py", "--demo", "--rows", "10")
    assert done.returncode == 0, done.stderr
    assert '"model": "model-10"' in done.stdout


@pytest.mark.slow
def test_distributed_example_with_the_documented_worker_commands(db_url: str) -> None:
    commands = [
        ["worker", "-q", "cpu_workers", "-i", "examples.distributed"],
        ["worker", "-q", "gpu_workers", "--resource", "gpu", "-i", "examples.distributed"],
    ]
    workers = [
        subprocess.Popen(
            [*cli(), *cmd, "--poll-interval", "1"],
            cwd=REPO, env=env_for(db_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        for cmd in commands
    ]
    try:
        done = run_example(db_url, "examples/distributed.py", "--rows", "10")
        assert done.returncode == 0, done.stderr
        assert '"model": "model-10"' in done.stdout
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        outs = [w.communicate(timeout=20)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    # Each queue's step ran in its own worker process, not in the executing one.
    assert all("1 completed" in out for out in outs), outs
