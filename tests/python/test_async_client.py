"""AsyncClient: generated from Client, the same surface, the same results on the same database.

Also the module-level ``*_async`` forms, ``start_flow`` (a workflow or a slug) and
``wait_for_run`` (sync and async), and the errors of a closed client or a foreign loop.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

import singularity_workflow as sw
from singularity_workflow import (
    AsyncClient,
    Client,
    ClientClosed,
    RunTimeout,
    Worker,
    Workflow,
    WrongEventLoop,
    _lifecycle,
    _listen,
    _run,
    _start,
    step,
)

ROOT = Path(__file__).resolve().parents[2]


class Doubler(Workflow):
    """One distributed step: what a worker serves while a caller starts runs and waits."""

    slug = "test_async_client.doubler"

    @step(execution="distributed", queue="g_async")
    def double(self, input: dict[str, Any]) -> dict[str, Any]:
        """Double the run input's n."""
        return {"n": input["run"]["n"] * 2}


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    with Client(db_url) as c:
        yield c


@pytest.fixture
def worker(client: Client) -> Iterator[Worker]:
    w = Worker(client, ["g_async"], poll_interval=0.5)
    w.run_in_thread()
    try:
        yield w
    finally:
        w.stop()
        w.join(10)


def test_the_committed_async_client_is_what_the_generator_makes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_async_client.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_")
    }


def _signature(fn: Any) -> list[tuple[str, Any, Any, str]]:
    sig = inspect.signature(fn)
    params = [
        (p.name, p.kind, p.default, str(p.annotation).replace("AsyncConnection", "Connection"))
        for p in sig.parameters.values()
    ]
    return [*params, ("return", None, None, str(sig.return_annotation))]


def test_both_clients_have_the_same_public_methods_and_signatures() -> None:
    sync, aio = _public(Client), _public(AsyncClient)
    assert set(sync) == set(aio)
    for name, member in sync.items():
        other = aio[name]
        if isinstance(member, property):
            assert isinstance(other, property), name
            continue
        if name == "connection":  # an async context manager: `async with aio.connection()`
            assert hasattr(other(AsyncClient()), "__aenter__")
        else:
            assert inspect.iscoroutinefunction(other), f"AsyncClient.{name} is not async"
        ours, theirs = _signature(member), _signature(other)
        if name in {"connect_dedicated", "connection"}:
            ours, theirs = ours[:-1], theirs[:-1]  # the connection types differ by design
        assert ours == theirs, name


def test_every_module_level_function_over_a_client_has_an_async_form() -> None:
    for module in (_lifecycle, _listen, _start):
        for name in module.__all__:
            fn = getattr(module, name)
            if not inspect.isfunction(fn) or name.endswith("_async"):
                continue
            if "client" not in inspect.signature(fn).parameters or name == "listen":
                continue
            twin = getattr(sw, f"{name}_async")
            assert inspect.iscoroutinefunction(twin), name
            assert [p for p in inspect.signature(twin).parameters] == [
                p for p in inspect.signature(fn).parameters
            ], name


# -- one scenario through both clients ---------------------------------------------------------

Call = Callable[..., Awaitable[Any]]


async def _scenario(call: Call, prefix: str) -> list[Any]:
    """Every public operation once, in an order that leaves the database usable; the results."""
    flow = f"{prefix}_flow"
    out: list[Any] = []
    out.append(await call("register_flow", {"slug": flow, "steps": [
        {"slug": "a", "execution": "distributed", "queue": f"{prefix}_q"},
        {"slug": "b", "depends_on": ["a"], "execution": "distributed", "queue": f"{prefix}_q"},
    ]}))
    out.append(await call("get_flow", flow))
    out.append(sorted(f["slug"] for f in await call("list_flows") if f["slug"].startswith(prefix)))
    dyn = await call("create_flow", f"{prefix}_dyn")
    out.append(dyn)
    out.append(await call("add_step", dyn, "only", queue=f"{prefix}_q", execution="distributed"))
    run = await call("start_flow", flow, {"x": 1})
    runs = await call("start_flows", flow, [{"x": 2}, {"x": 3}])
    out.append(len(runs))
    out.append((await call("get_run_status", run)).state)
    out.append(
        [r.flow_slug for r in await call("list_workflow_runs", workflow_slug=flow, limit=10)]
    )
    await call("pause_workflow_run", run)
    out.append((await call("get_run_status", run)).state)
    await call("resume_workflow_run", run)
    claimed = await call("claim_tasks", f"{prefix}_q", 10, worker_id=f"{prefix}_w")
    out.append(sorted(t.step_slug for t in claimed))
    by_run = {t.run_id: t for t in claimed}
    first = by_run[run]
    out.append(await call("extend_leases", [(first.task_id, first.attempt)], 30) == {
        first.task_id: True})
    out.append(list((await call("complete_tasks", [(first.task_id, first.attempt, {"ok": 1})]
                     )).values()))
    out.append(await call("complete_tasks", []))
    out.append(await call("get_step_outputs", run))
    second = by_run[runs[0]]
    out.append(list((await call("fail_tasks", [(second.task_id, second.attempt, "boom")]
                     )).values()))
    await call("cancel_workflow_run", runs[1], "enough")
    out.append((await call("get_run_status", runs[1])).state)
    out.append(await call("enforce_deadlines", max_runs=5))
    out.append(sorted(await call("maintain")))
    channel = f"{prefix}_chan"
    message_id = await call("send_with_notify", channel, {"hello": prefix})
    await call("notify_only", channel, "ping")
    out.append([m.message for m in await call("read_channel", channel)])
    out.append(await call("last_message_id", channel) == message_id)
    out.append(await call("ack_message", channel, message_id))
    events = await call("read_events", 0, run)
    out.append([e.event for e in events][:3])
    out.append(await call("last_event_id") >= events[-1].event_id)
    graph = await call("store_task_graph", f"{prefix} goal", [
        {"id": "t1", "description": "first", "depends_on": []}])
    out.append(sorted(await call("get_task_graph", graph)))
    await call("approve_task_graph", graph)
    await call("record_task_graph_run", graph, flow, run)
    retried = await call("retry_failed_workflow", runs[1])
    out.append(isinstance(retried, UUID))
    return [_normalise(value, prefix) for value in out]


def _normalise(value: Any, prefix: str) -> Any:
    """Make the two runs comparable: the prefix becomes P, dates and ids are dropped."""
    text = repr(value).replace(prefix, "P")
    return text


def test_the_public_surface_gives_the_same_results_through_both_clients(db_url: str) -> None:
    with Client(db_url) as sync:

        async def sync_call(name: str, *args: Any, **kwargs: Any) -> Any:
            return getattr(sync, name)(*args, **kwargs)

        sync_results = asyncio.run(_scenario(sync_call, "g_sync"))

    async def through_async() -> list[Any]:
        async with AsyncClient(db_url) as aio:

            async def async_call(name: str, *args: Any, **kwargs: Any) -> Any:
                return await getattr(aio, name)(*args, **kwargs)

            return await _scenario(async_call, "g_aio")

    async_results = asyncio.run(through_async())
    assert async_results == sync_results
    # The scenario exercised every operation method.
    assert len(sync_results) > 20


def test_a_closed_async_client_names_the_call(db_url: str) -> None:
    async def scenario() -> None:
        aio = AsyncClient(db_url)
        await aio.list_flows()
        await aio.close()
        with pytest.raises(ClientClosed, match=r"AsyncClient\.get_run_status\(\) called after"):
            await aio.get_run_status("00000000-0000-0000-0000-000000000000")

    asyncio.run(scenario())


def test_an_async_client_refuses_another_event_loop(db_url: str) -> None:
    aio = AsyncClient(db_url)
    asyncio.run(aio.list_flows())

    async def elsewhere() -> None:
        with pytest.raises(WrongEventLoop, match=r"AsyncClient\.list_flows\(\) called from"):
            await aio.list_flows()

    asyncio.run(elsewhere())


def test_async_calls_run_on_a_given_async_connection(db_url: str) -> None:
    async def scenario() -> int:
        async with AsyncClient(db_url) as aio:
            conn = await aio.connect_dedicated()
            try:
                await aio.send_with_notify("g_given_conn", {"n": 1}, conn=conn)
                # Only the given connection was used: the client never opened its own.
                assert aio._own is None
                return await aio.last_message_id("g_given_conn", conn=conn)
            finally:
                await conn.close()

    assert asyncio.run(scenario()) == 1


def test_async_client_refuses_a_sync_connection_type() -> None:
    with pytest.raises(TypeError, match="AsyncClient"):
        AsyncClient(123)  # type: ignore[arg-type]


# -- start without waiting, then wait -----------------------------------------------------------


def test_start_flow_registers_a_workflow_and_wait_for_run_returns_its_status(
    client: Client, worker: Worker
) -> None:
    run_id = sw.start_flow(Doubler, {"n": 21}, client=client)
    status = sw.wait_for_run(run_id, timeout=20, client=client)
    assert status.status == "completed"
    assert status.output == {"double": {"n": 42}}


def test_start_flows_takes_a_slug_and_async_waits_see_every_end(
    client: Client, worker: Worker, db_url: str
) -> None:
    client.register_flow(Doubler)

    async def scenario() -> list[Any]:
        async with AsyncClient(db_url) as aio:
            ids = await sw.start_flows_async(Doubler.slug or "", [{"n": 1}, {"n": 2}], client=aio)
            statuses = await asyncio.gather(
                *(sw.wait_for_run_async(i, timeout=20, client=aio) for i in ids)
            )
            return [s.output for s in statuses]

    assert asyncio.run(scenario()) == [{"double": {"n": 2}}, {"double": {"n": 4}}]


def test_wait_for_run_raises_run_timeout_and_leaves_the_run(client: Client) -> None:
    run_id = client.start_flow(Doubler, {"n": 1})  # no worker serves g_async here
    with pytest.raises(RunTimeout) as info:
        sw.wait_for_run(run_id, timeout=0.3, client=client)
    assert info.value.run_id == run_id
    assert client.get_run_status(run_id).state == "running"

    async def scenario() -> None:
        async with AsyncClient(client.conninfo) as aio:
            with pytest.raises(RunTimeout):
                await sw.wait_for_run_async(run_id, timeout=0.3, client=aio)

    asyncio.run(scenario())


def test_the_generator_refuses_a_method_that_uses_the_result_of_its_call() -> None:
    from tests.fixtures import import_file

    gen = import_file(ROOT / "scripts" / "gen_async_client.py")
    ok = ast.parse("def f(self, x):\n    return self.call(op(x))\n").body[0]
    assert "await self._replay(Client.f, x)" in gen._method(ok)
    bad = ast.parse("def g(self):\n    return self.call(op())['key']\n").body[0]
    with pytest.raises(SystemExit, match=r"Client\.g: the result of self\.call"):
        gen._method(bad)


# -- execute_async over an AsyncClient ----------------------------------------------------------


class Halver(Workflow):
    """A distributed step that fails for odd input: execute's RunFailed through both paths."""

    slug = "test_async_client.halver"

    @step(execution="distributed", queue="g_async", max_attempts=1)
    def halve(self, input: dict[str, Any]) -> dict[str, Any]:
        """Halve n, refusing odd numbers."""
        n = input["run"]["n"]
        if n % 2:
            raise ValueError(f"{n} is odd")
        return {"n": n // 2}


class LocalAndRemote(Workflow):
    """A local step then a distributed one: execute_async takes the thread path for it."""

    slug = "test_async_client.local_and_remote"

    @step
    def here(self, input: dict[str, Any]) -> int:
        """Local: add one."""
        return int(input["run"]["n"]) + 1

    @step(execution="distributed", queue="g_async", depends_on=["here"])
    def there(self, input: dict[str, Any]) -> int:
        """Distributed: triple."""
        return int(input["here"]) * 3


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """Return what a call ended with, comparable across the two paths (run ids differ)."""
    try:
        return ("ok", fn().output)
    except sw.RunFailed as e:
        return ("RunFailed", (e.step, e.error))
    except RunTimeout as e:
        return ("RunTimeout", (e.completed_steps, e.total_steps))


def test_execute_async_over_an_async_client_matches_execute_without_a_thread(
    client: Client, worker: Worker, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases: list[tuple[Any, dict[str, Any]]] = [
        (Doubler, {"n": 21}), (Halver, {"n": 8}), (Halver, {"n": 7}), (LocalAndRemote, {"n": 4})
    ]
    sync = [_outcome(lambda w=w, i=i: sw.execute(w, i, timeout=30, client=client))
            for w, i in cases]
    assert [kind for kind, _ in sync] == ["ok", "ok", "RunFailed", "ok"]

    threaded: list[str] = []
    real_execute = _run.execute

    def spy(workflow: Any, *args: Any, **kwargs: Any) -> Any:
        threaded.append(workflow_slug(workflow))
        return real_execute(workflow, *args, **kwargs)

    monkeypatch.setattr(_run, "execute", spy)

    async def scenario() -> list[tuple[str, Any]]:
        out = []
        async with AsyncClient(db_url) as aio:
            for w, i in cases:
                try:
                    r = await sw.execute_async(w, i, timeout=30, client=aio)
                    out.append(("ok", r.output))
                except sw.RunFailed as e:
                    out.append(("RunFailed", (e.step, e.error)))
        return out

    assert asyncio.run(scenario()) == sync
    # Only the workflow with a local step went through the sync execute (in a thread).
    assert threaded == [LocalAndRemote.slug]


def workflow_slug(workflow: Any) -> str:
    """Return the slug of a workflow class or definition."""
    return str(getattr(workflow, "slug", ""))


def test_execute_async_times_out_as_execute_does(client: Client, db_url: str) -> None:
    # No worker serves g_async here: both paths time out, cancel the run and say so.
    sync = _outcome(lambda: sw.execute(Doubler, {"n": 1}, timeout=0.5, client=client))

    async def scenario() -> tuple[tuple[str, Any], Any]:
        async with AsyncClient(db_url) as aio:
            try:
                await sw.execute_async(Doubler, {"n": 1}, timeout=0.5, client=aio)
            except RunTimeout as e:
                return ("RunTimeout", (e.completed_steps, e.total_steps)), e.run_id
        raise AssertionError("execute_async did not time out")

    outcome, run_id = asyncio.run(scenario())
    assert outcome == sync == ("RunTimeout", (0, 1))
    status = client.get_run_status(run_id)
    assert (status.state, status.error) == ("cancelled", "deadline exceeded")


def test_cancelling_execute_async_cancels_the_run(client: Client, db_url: str) -> None:
    client.register_flow(Doubler)
    before = {r.run_id for r in client.list_workflow_runs(workflow_slug=Doubler.slug, limit=1000)}

    async def scenario() -> UUID:
        async with AsyncClient(db_url) as aio:
            task = asyncio.create_task(sw.execute_async(Doubler, {"n": 3}, timeout=30, client=aio))
            deadline = time.monotonic() + 20
            new: list[UUID] = []
            while not new and time.monotonic() < deadline:  # until the run is started
                await asyncio.sleep(0.05)
                runs = await aio.list_workflow_runs(workflow_slug=Doubler.slug, limit=1000)
                new = [r.run_id for r in runs if r.run_id not in before]
            assert new, "execute_async started no run"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return new[0]

    run_id = asyncio.run(scenario())
    status = client.get_run_status(run_id)
    assert (status.state, status.error) == ("cancelled", "execute_async was cancelled")


def test_execute_async_refuses_a_closed_or_foreign_async_client(db_url: str) -> None:
    async def closed() -> None:
        aio = AsyncClient(db_url)
        await aio.close()
        for workflow in (Doubler, LocalAndRemote):  # the native path and the thread path
            with pytest.raises(ClientClosed, match=r"AsyncClient\.execute_async\(\) called after"):
                await sw.execute_async(workflow, {"n": 1}, client=aio)

    asyncio.run(closed())

    shared = AsyncClient(db_url)
    asyncio.run(shared.list_flows())

    async def elsewhere() -> None:
        with pytest.raises(WrongEventLoop, match=r"AsyncClient\.execute_async\(\) called from"):
            await sw.execute_async(LocalAndRemote, {"n": 1}, client=shared)

    asyncio.run(elsewhere())
