"""singularity_workflow.testing: backend choice, run_in_process, run_to_completion, the plugin.

The container backend cannot run here (no Docker engine): its choice is tested with fake
probes, and its code path is the few lines of ``testing._container``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from singularity_workflow import Client, Workflow, step
from singularity_workflow.testing import (
    Backend,
    choose_backend,
    docker_reachable,
    run_in_process,
    run_to_completion,
)
from tests.fixtures import admin_url

ROOT = Path(__file__).resolve().parents[2]


def _never() -> bool:
    raise AssertionError("the Docker probe must not run when a URL is set")


@pytest.mark.parametrize("variable", ["SW_TEST_DATABASE_URL", "SW_TEST_ADMIN_URL", "DATABASE_URL"])
def test_a_url_in_the_environment_wins_without_probing_docker(variable: str) -> None:
    backend = choose_backend({variable: "postgresql://x/y"}, docker=_never, testcontainers=_never)
    assert backend == Backend("url", "postgresql://x/y")


def test_the_test_url_wins_over_the_application_url() -> None:
    env = {"DATABASE_URL": "postgresql://app/db", "SW_TEST_DATABASE_URL": "postgresql://test/db"}
    assert choose_backend(env, docker=_never).url == "postgresql://test/db"


def test_without_a_url_a_reachable_docker_engine_gets_a_container() -> None:
    backend = choose_backend({}, docker=lambda: True, testcontainers=lambda: True)
    assert backend.kind == "testcontainers"


def test_without_docker_or_without_testcontainers_the_embedded_server_is_used() -> None:
    assert choose_backend({}, docker=lambda: False, testcontainers=lambda: True).kind == "embedded"
    assert choose_backend({}, docker=_never, testcontainers=lambda: False).kind == "embedded"


def test_docker_is_reachable_only_when_its_socket_accepts(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    assert not docker_reachable({"DOCKER_HOST": f"unix://{path}"})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        assert docker_reachable({"DOCKER_HOST": f"unix://{path}"})
    # A socket file nobody listens on is not an engine.
    assert not docker_reachable({"DOCKER_HOST": f"unix://{path}"})
    assert docker_reachable({"DOCKER_HOST": "tcp://docker.example:2375"})


# -- the in-process runner -----------------------------------------------------------------------


class Pipeline(Workflow):
    """Declared out of order on purpose: the runner must follow dependencies, not lines."""

    slug = "test_testing.pipeline"

    @step(depends_on=["square"])
    def total(self, input: dict[str, Any]) -> dict[str, Any]:
        """Sum the squares and add the run's offset."""
        return {"sum": sum(input["square"]) + input["run"]["offset"]}

    @step
    def numbers(self, input: dict[str, Any]) -> list[int]:
        """Produce the numbers to square."""
        return list(range(input["run"]["n"]))

    @step(depends_on=["numbers"], map=True)
    async def square(self, item: int) -> int:
        """Square one element (async: the runner awaits it)."""
        await asyncio.sleep(0)
        return item * item


def test_run_in_process_follows_dependencies_maps_and_awaits() -> None:
    outputs = run_in_process(Pipeline, {"n": 4, "offset": 100})
    assert outputs == {"numbers": [0, 1, 2, 3], "square": [0, 1, 4, 9], "total": {"sum": 114}}


def test_run_in_process_refuses_a_map_over_something_that_is_not_an_array() -> None:
    class RootMap(Workflow):
        slug = "test_testing.root_map"

        @step(map=True)
        def each(self, item: Any) -> Any:
            """Echo the element."""
            return item

    assert run_in_process(RootMap, [1, 2]) == {"each": [1, 2]}
    with pytest.raises(TypeError, match="each maps over the run input"):
        run_in_process(RootMap, {"not": "an array"})


# -- run_to_completion against a real database ----------------------------------------------------


class Distributed(Workflow):
    """The pipeline's shape on workers: one queue for all three steps."""

    slug = "test_testing.distributed"

    @step(execution="distributed", queue="g_testing")
    def numbers(self, input: dict[str, Any]) -> list[int]:
        """Produce the numbers."""
        return list(range(input["run"]["n"]))

    @step(depends_on=["numbers"], map=True, execution="distributed", queue="g_testing")
    def double(self, item: int) -> int:
        """Double one element."""
        return 2 * item

    @step(depends_on=["double"], execution="distributed", queue="g_testing", max_attempts=1)
    def check(self, input: dict[str, Any]) -> int:
        """Fail on request, else count the elements."""
        if input["run"].get("fail"):
            raise ValueError("asked to fail")
        return len(input["double"])


def test_run_to_completion_returns_the_status_and_every_step_output(db_url: str) -> None:
    with Client(db_url) as client:
        done = run_to_completion(Distributed, {"n": 3}, client=client, timeout=30)
        assert done.status.status == "completed"
        assert done.outputs == {"numbers": [0, 1, 2], "double": [0, 2, 4], "check": 3}
        local = run_to_completion(Pipeline, {"n": 2, "offset": 0}, client=client, timeout=30)
        assert local.outputs["total"] == {"sum": 1}


def test_run_to_completion_returns_a_failed_run_instead_of_raising(db_url: str) -> None:
    with Client(db_url) as client:
        done = run_to_completion(Distributed, {"n": 1, "fail": True}, client=client, timeout=30)
        assert done.status.status == "failed"
        assert done.status.failed_step == "check"
        assert done.outputs == {"numbers": [0], "double": [0]}


# -- the plugin, enabled with one line in a user's conftest ---------------------------------------


@pytest.mark.database
@pytest.mark.slow
def test_the_plugin_serves_a_users_suite(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["singularity_workflow.testing"]\n')
    (tmp_path / "test_user.py").write_text(textwrap.dedent('''
        import asyncio
        from singularity_workflow import Workflow, step, wait_for_run

        class Hello(Workflow):
            slug = "user.hello"

            @step(execution="distributed")
            def greet(self, input):
                return {"hello": input["run"]["name"]}

        def test_a_worker_serves_a_started_run(sw_client, sw_worker):
            sw_worker()
            run_id = sw_client.start_flow(Hello, {"name": "ada"})
            assert wait_for_run(run_id, 20, client=sw_client).output == {
                "greet": {"hello": "ada"}}

        def test_each_test_gets_a_fresh_database(sw_client):
            assert sw_client.list_workflow_runs() == []

        def test_the_async_client(sw_async_client):
            assert asyncio.run(sw_async_client.list_flows()) == []
    '''))
    env = {**os.environ, "SW_TEST_DATABASE_URL": admin_url(), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
