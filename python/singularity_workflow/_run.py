"""Start a run and wait for its end: ``execute``, ``execute_async``, ``execute_dynamic``.

(``execute_async`` over an ``AsyncClient`` awaits a run of distributed steps natively on the
caller's loop; a run with local steps needs the sync engine, so it goes to a thread.)

The calling process starts the run and then acts as the worker for that run's *local* steps
(queue ``local``, claimed with ``for_run_id`` so it never takes another run's local work), using
the same engine as :class:`~singularity_workflow.Worker` (claim, handlers in threads or on an
event loop, lease renewal, batched flushes). Distributed steps are left to the workers of their
queues. The outcome comes from the database: the run's ``workflow_run_<run_id>`` notification
wakes the waiter, and a status check once per poll tick covers a lost notification.

Order matters for not missing the end of a run: the run id is generated here, and the LISTEN is
in place before ``start_flow`` commits, so even a run that ends inside its first transaction
(a flow of one map step over an empty array) is seen.

The calling process is the run's **owner**: it registers as a worker (its own id, queue
``local``, the run's steps as its handlers) before it starts the run, passes ``owner =>`` to
``start_flow``, heartbeats from a thread while it waits, and deregisters at the end. So the
engine knows when nobody can run the local steps any more: Ctrl-C (``KeyboardInterrupt``)
deregisters in a ``finally`` and sweeps at once, so the run fails immediately with
``owner <id> is gone (deregistered)``; a SIGKILL stops the heartbeat, and the engine's own
sweep (run by start, claim and status calls) fails the run once the heartbeat timeout passed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from singularity_workflow._async_client import AsyncClient, default_async_client
from singularity_workflow._client import Client, default_client
from singularity_workflow._errors import RunFailed, RunTimeout, WorkflowError
from singularity_workflow._operations._args import (
    need_functions,
    need_text,
    need_wait,
    need_workflow,
)
from singularity_workflow._start import wait_for_run_async
from singularity_workflow._types import RunStatus
from singularity_workflow.definitions import workflow_def
from singularity_workflow.definitions._signature import context_param
from singularity_workflow.definitions._typed import typed_io
from singularity_workflow.worker import (
    Engine,
    HandlerNotFound,
    Registration,
    Resolver,
    Source,
    StepHandler,
    def_resolver,
    default_worker_id,
)
from singularity_workflow.worker._registration import DEFAULT_HEARTBEAT_TIMEOUT

__all__ = ["RunResult", "execute", "execute_async", "execute_dynamic", "execute_retry"]

#: How often the waiter checks the run's status when no notification came (a lost
#: notification then costs at most this much latency) and re-checks the local queue.
_POLL_SECONDS = 1.0
#: The ``get_run_status`` status of a run that has not ended (running or paused: a paused run
#: may resume).
_LIVE = "in_progress"
#: The reason a run is cancelled with when its deadline passes (enforce_deadlines' own words).
_DEADLINE_REASON = "deadline exceeded"
#: Statuses the run's notification carries when it ends.
_ENDED = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class RunResult:
    """A completed run: its id and its output (the outputs of its leaf steps, by step name).

    Unpacks as ``output, run_id = execute(...)``, the order of the Elixir library's
    ``{:ok, result, run_id}``; ``.output`` and ``.run_id`` name the same two values.
    """

    run_id: UUID
    output: Any

    def __iter__(self) -> Iterator[Any]:
        """Yield ``output`` then ``run_id``, so the result unpacks as ``(output, run_id)``."""
        yield self.output
        yield self.run_id


def execute(
    workflow: Any,
    input: Any,
    *,
    timeout: float = 300,
    client: Client | None = None,
    concurrency: int = 10,
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT,
) -> RunResult:
    """Run ``workflow`` on ``input`` and wait for it; return its :class:`RunResult`.

    ``workflow`` is a ``Workflow`` subclass (or instance) or a class with ``__workflow_steps__``;
    it is validated, then registered (idempotent for the same shape). Local steps run in this
    process, up to ``concurrency`` at once (sync handlers in threads, ``async def`` handlers on
    one event loop of this call); distributed steps run on workers serving their queues.

    Raises :class:`RunFailed` (``run_id``, ``step``, ``error``) when the run fails, and
    :class:`RunTimeout` (``run_id``, ``completed_steps``, ``total_steps``) after ``timeout``
    seconds. On timeout the run is cancelled with the reason ``deadline exceeded``: its queued
    work is removed and its running tasks are refused at their next lease renewal. ``timeout`` is
    also the run's deadline in the database (rounded up to whole seconds), so the run is
    cancelled even if this process dies while waiting (workers enforce deadlines on every poll).
    A cancelled run (by anyone) raises :class:`RunFailed`.

    This process owns the run (see the module doc): if it dies, the run fails with
    ``owner <id> is gone`` within ``heartbeat_timeout`` seconds (at once on Ctrl-C).
    """
    need_workflow(workflow)
    need_wait(timeout, concurrency)
    client = client if client is not None else default_client()
    defn = workflow_def(workflow)
    # The run is started on the version this process's definition is, not on whatever version
    # is current: during a rolling deploy another process may have registered a newer shape.
    version = client.register_flow_version(defn).version
    run_id = uuid4()

    def start(owner: str) -> UUID:
        # The deadline makes the database end the run too, not only this wait.
        return client.start_flow(defn.slug, input, run_id=run_id, owner=owner,
                                 timeout_seconds=max(1, math.ceil(timeout)), version=version)

    return _execute_run(client, defn.slug, def_resolver(defn), [s.name for s in defn.steps],
                        start, run_id, timeout, concurrency, heartbeat_timeout)


async def execute_async(
    workflow: Any,
    input: Any,
    *,
    timeout: float = 300,
    client: AsyncClient | Client | None = None,
    concurrency: int = 10,
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT,
) -> RunResult:
    """Await :func:`execute` without blocking the event loop (same arguments, same results).

    ``client`` is an :class:`AsyncClient` (None: the running loop's default one, over
    ``DATABASE_URL``) or a sync :class:`Client`. With an ``AsyncClient`` and a workflow whose
    steps are all distributed, nothing runs in a thread: the version is registered, the run
    started and its end awaited on this loop (``wait_for_run_async`` LISTENs on the run's
    channel on an async connection). No owner is registered then (no step needs this
    process), so the run goes on if this process dies; its deadline (``timeout``) still ends it
    in the database, and cancelling the awaiting task cancels the run (as Ctrl-C ends
    :func:`execute`'s). A workflow with local steps, or a sync ``Client``, runs the sync
    ``execute`` in a thread (the engine that serves local steps is sync; with an
    ``AsyncClient`` it gets a ``Client`` on the same database): ``async def`` handlers of local
    steps then run on the executor's own event loop thread, not on the caller's loop, so they
    must not share loop-bound objects (sessions, locks) with it.
    """
    need_workflow(workflow)
    need_wait(timeout, concurrency)
    if isinstance(client, Client):
        return await asyncio.to_thread(
            functools.partial(execute, workflow, input, timeout=timeout, client=client,
                              concurrency=concurrency, heartbeat_timeout=heartbeat_timeout)
        )
    aclient = client if client is not None else default_async_client()
    # A closed client, or one bound to another loop, is refused here naming this call, also
    # on the thread path below (which only borrows the client's connection string).
    aclient._check("execute_async")
    defn = workflow_def(workflow)
    if any(s.execution == "local" for s in defn.steps):
        with Client(aclient.conninfo) as sync_client:
            return await asyncio.to_thread(
                functools.partial(execute, defn, input, timeout=timeout, client=sync_client,
                                  concurrency=concurrency, heartbeat_timeout=heartbeat_timeout)
            )
    # Pinned to this definition's version, as execute does (a rolling deploy may have made
    # another version current).
    version = (await aclient.register_flow_version(defn)).version
    run_id = await aclient.start_flow(defn.slug, input, timeout_seconds=max(1, math.ceil(timeout)),
                                      version=version)
    try:
        status = await wait_for_run_async(run_id, timeout, client=aclient)
    except RunTimeout:
        # As execute: end the run now rather than at the next deadline sweep.
        try:
            await aclient.cancel_workflow_run(run_id, reason=_DEADLINE_REASON)
        except WorkflowError:  # it ended meanwhile; report how
            pass
        status = await aclient.get_run_status(run_id)
    except asyncio.CancelledError:
        # The caller gave up on the run: nothing of it should go on (execute's Ctrl-C).
        try:
            await asyncio.shield(aclient.cancel_workflow_run(
                run_id, reason="execute_async was cancelled"))
        except WorkflowError:
            pass
        raise
    if status.state == "cancelled" and status.error == _DEADLINE_REASON:
        raise RunTimeout(
            run_id=run_id,
            completed_steps=status.completed_steps,
            total_steps=status.total_steps,
            hint=f"The run was cancelled (reason: {_DEADLINE_REASON}); see"
            f" `singularity-workflow status {run_id}`.",
        )
    return _outcome(run_id, status)


def execute_dynamic(
    flow_slug: str,
    input: Any,
    step_functions: Mapping[str, Callable[[Any], Any]],
    *,
    timeout: float = 300,
    client: Client | None = None,
    concurrency: int = 10,
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT,
) -> RunResult:
    """Run a flow stored in the database (built at run time) with the given step functions.

    ``step_functions`` maps each local step's slug to its handler (distributed steps may be
    left out: their workers provide them). The flow's shape (map steps, timeouts) is read with
    ``get_flow``. Same waiting, errors and timeout semantics as :func:`execute`.
    """
    need_text(flow_slug, "flow_slug")
    need_functions(step_functions, "step_functions")
    need_wait(timeout, concurrency)
    client = client if client is not None else default_client()
    resolve = _functions_resolver(client, flow_slug, step_functions)
    run_id = uuid4()

    def start(owner: str) -> UUID:
        return client.start_flow(flow_slug, input, run_id=run_id, owner=owner,
                                 timeout_seconds=max(1, math.ceil(timeout)))

    return _execute_run(client, flow_slug, resolve, list(step_functions), start, run_id,
                        timeout, concurrency, heartbeat_timeout)


def execute_retry(
    run_id: UUID | str,
    workflow: Any,
    *,
    skip_completed: bool = True,
    reset_all: bool = False,
    timeout: float = 300,
    client: Client | None = None,
    concurrency: int = 10,
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT,
) -> RunResult:
    """Retry a failed run and execute the new run in this process; return its :class:`RunResult`.

    What ``retry_failed_workflow`` does for a flow with local steps: only this process can run
    them, so it owns the new run (as :func:`execute` does). ``workflow`` is the workflow class
    (or instance), or a mapping of step slug to function for a flow built in the database (as
    :func:`execute_dynamic`). ``skip_completed`` / ``reset_all`` as in
    ``retry_failed_workflow``; errors and timeout as in :func:`execute`.
    """
    client = client if client is not None else default_client()
    failed = client.get_run_status(run_id)
    if isinstance(workflow, Mapping):
        flow_slug = failed.flow_slug
        resolver = _functions_resolver(client, flow_slug, workflow)
        names = list(workflow)
    else:
        defn = workflow_def(workflow)
        flow_slug, resolver, names = defn.slug, def_resolver(defn), [s.name for s in defn.steps]

    def start(owner: str) -> UUID:
        return client.retry_failed_workflow(run_id, skip_completed=skip_completed,
                                            reset_all=reset_all, owner=owner)

    return _execute_run(client, flow_slug, resolver, names, start, None, timeout, concurrency,
                        heartbeat_timeout)


def _functions_resolver(
    client: Client, flow_slug: str, step_functions: Mapping[str, Callable[[Any], Any]]
) -> Resolver:
    """Return a resolver over ``step_functions``; the shape (map, timeout) comes from get_flow.

    Every function's signature (how it asks for a context) and typed I/O are read here, before
    any run starts, so a handler the engine cannot call is a ``DefinitionError`` naming it at
    once, as for a workflow class, instead of a failed task once the run is under way.
    """
    flow = client.get_flow(flow_slug)
    steps = {s["slug"]: s for s in flow.get("steps", [])}
    handlers: dict[str, StepHandler] = {}
    for slug, fn in step_functions.items():
        step = steps.get(slug)
        if step is None:
            continue  # no such step: a task can never ask for it
        where = f"flow {flow_slug}, step {slug}"
        handlers[slug] = StepHandler(
            fn=fn, is_map=step.get("type") == "map", timeout=step.get("timeout"),
            context=context_param(fn, where), typed=typed_io(fn, where, slug))

    def resolve(task: Any) -> StepHandler:
        handler = handlers.get(task.step_slug)
        if handler is None:
            raise HandlerNotFound(
                f"no function was given for step {task.step_slug!r} of {flow_slug!r}"
            )
        return handler

    return resolve


def _execute_run(
    client: Client,
    flow_slug: str,
    resolver: Resolver,
    step_names: list[str],
    start: Callable[[str], UUID],
    known_run_id: UUID | None,
    timeout: float,
    concurrency: int,
    heartbeat_timeout: int,
) -> RunResult:
    """Own a run: register, ``start(owner)`` it, serve its local steps, return or raise its outcome.

    ``known_run_id`` (execute): the LISTEN is in place before the run starts. None (a retry,
    whose id the database picks): the engine starts right after the run, and a status check
    once a second covers an end it did not hear.
    """
    owner = f"{default_worker_id()}:execute"
    registration = Registration(
        client, owner, queues=["local"], resources=None,
        handlers=lambda: {flow_slug: step_names}, heartbeat_timeout=heartbeat_timeout,
    )
    registration.start()  # before start(): the run's owner exists when the run does
    interrupted = True
    try:
        serving: _Serving | None = None
        if known_run_id is not None:
            serving = _serve(client, known_run_id, resolver, concurrency, owner)
        try:
            run_id = start(owner)
        except BaseException:
            if serving is not None:
                serving.engine.close()
            raise
        if serving is None:
            serving = _serve(client, run_id, resolver, concurrency, owner)
        result = _wait(client, run_id, serving, timeout)
        interrupted = False
        return result
    except (RunFailed, RunTimeout, WorkflowError):
        interrupted = False
        raise
    finally:
        registration.stop()
        if interrupted:
            # Ctrl-C or an unexpected error: the run cannot go on without us. Sweeping now fails
            # it at once (owner gone) instead of at the next engine call.
            try:
                client.maintain()
            except Exception:  # the database is away: the next engine call sweeps
                pass


@dataclass(frozen=True)
class _Serving:
    """The engine serving one run's local steps, and how it learns that the run ended."""

    engine: Engine
    ended: threading.Event
    on_poll: Callable[[], None]


def _serve(client: Client, run_id: UUID, resolver: Resolver, concurrency: int,
           owner: str) -> _Serving:
    """Build and start the engine serving ``run_id``'s local steps (LISTEN in place on return)."""
    run_channel = f"workflow_run_{run_id}"
    ended = threading.Event()

    def on_notify(channel: str, payload: str) -> None:
        # channel "" = the listener reconnected and may have missed our notification. The run
        # channel carries every event of the run (steps, pause, resume): only an end counts.
        if channel == run_channel:
            try:
                status = json.loads(payload).get("status")
            except (ValueError, AttributeError):
                status = None
            if status in _ENDED:
                ended.set()
        elif channel == "" and _finished(client, run_id):
            ended.set()

    def on_poll() -> None:
        if _finished(client, run_id):
            ended.set()

    engine = Engine(
        client,
        [Source("local", run_id)],
        resolver,
        resources=None,
        concurrency=concurrency,
        poll_interval=_POLL_SECONDS,
        worker_id=owner,
        extra_channels=[run_channel],
        on_notify=on_notify,
    )
    engine.start()  # LISTEN is in place from here on
    return _Serving(engine, ended, on_poll)


def _wait(client: Client, run_id: UUID, serving: _Serving, timeout: float) -> RunResult:
    """Serve the run's local steps until it ends or ``timeout`` passes; return or raise."""
    try:
        serving.engine.run(until=serving.ended.is_set, deadline=time.monotonic() + timeout,
                           on_poll=serving.on_poll)
    finally:
        serving.engine.close()
    status = client.get_run_status(run_id)
    if status.state == "cancelled" and status.error == "deadline exceeded":
        # The database deadline is this call's timeout (rounded up to whole seconds) counted
        # from the start; when the engine's own sweep (in a claim, or in the status read above)
        # cancels the run for it before or as this wait runs out, that is still this call's
        # timeout, whichever process noticed it first.
        raise RunTimeout(
            run_id=run_id,
            completed_steps=status.completed_steps,
            total_steps=status.total_steps,
            hint="The run was cancelled (reason: deadline exceeded); see"
            f" `singularity-workflow status {run_id}`.",
        )
    if status.status == _LIVE:
        # The wait timed out. End the run now rather than when the database deadline (rounded
        # up to whole seconds) is next enforced, so nothing of it runs after the caller gave up.
        try:
            client.cancel_workflow_run(run_id, reason=_DEADLINE_REASON)
        except WorkflowError:  # it ended meanwhile; report how
            pass
        status = client.get_run_status(run_id)
    # Cancelled for its deadline, by us just now or already by the engine's own sweep (claims
    # and status reads enforce deadlines, so it may end the run a moment before this wait does):
    # either way the caller's timeout ran out.
    if status.state == "cancelled" and status.error == _DEADLINE_REASON:
        raise RunTimeout(
            run_id=run_id,
            completed_steps=status.completed_steps,
            total_steps=status.total_steps,
            hint=f"The run was cancelled (reason: {_DEADLINE_REASON}); see"
            f" `singularity-workflow status {run_id}`.",
        )
    return _outcome(run_id, status)


def _outcome(run_id: UUID, status: RunStatus) -> RunResult:
    """Return the result of an ended run, or raise how it failed (RunFailed, WorkflowError)."""
    if status.state == "cancelled":
        raise RunFailed(
            f"run {run_id} was cancelled: {status.error or 'cancelled'}",
            run_id=run_id,
            step=status.failed_step,
            error=status.error or "cancelled",
        )
    if status.status == "completed":
        return RunResult(run_id, status.output)
    if status.status == "failed":
        step = status.failed_step
        error = status.error
        # The server words it "step X failed: <the handler's error>"; RunFailed's own message
        # names the step, so keep `error` as the handler's text ("ValueError: ...").
        prefix = f"step {step} failed: "
        if isinstance(error, str) and error.startswith(prefix):
            error = error[len(prefix) :]
        raise RunFailed(run_id=run_id, step=step, error=error)
    raise WorkflowError(f"run {run_id} ended with status {status.status!r}")


def _finished(client: Client, run_id: UUID) -> bool:
    """Tell whether the run ended (completed, failed or cancelled)."""
    try:
        return client.get_run_status(run_id).status != _LIVE
    except Exception:  # the database is away: the loop reconnects, and we ask again later
        return False
