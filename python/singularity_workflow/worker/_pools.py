"""Where handlers run: a pool of daemon threads for sync handlers, one event loop for async ones.

An engine owns one of each. ``concurrency`` is enforced by the engine (it never holds more
claimed tasks than that), so the pool's size is only the most threads it may start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue as queue_mod
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["AsyncRunner", "DaemonPool"]

log = logging.getLogger("singularity_workflow.worker")


class DaemonPool:
    """A fixed-size pool of daemon threads for sync handlers.

    Not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined at interpreter exit,
    so one handler stuck past the shutdown grace would keep a stopped worker process alive.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue_mod.SimpleQueue[Callable[[], None] | None] = queue_mod.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        # Threads whose handler outlived its step's timeout: a thread cannot be killed, so it
        # is replaced (it no longer counts against the size) and exits when its job returns.
        self._written_off: set[threading.Thread] = set()
        self._started = 0

    @property
    def written_off(self) -> int:
        """How many threads are written off and still stuck in their handler."""
        with self._lock:
            return len(self._written_off)

    def write_off(self, thread: threading.Thread) -> int:
        """Stop counting ``thread`` (stuck in a handler) against the size; return how many are.

        The next :meth:`submit` starts a new thread in its place, so the pool keeps its
        capacity. The stuck thread exits instead of taking another job if its handler returns.
        """
        with self._lock:
            if thread in self._threads:
                self._threads.remove(thread)
                self._written_off.add(thread)
            return len(self._written_off)

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a pool thread (threads start lazily, up to the pool size)."""
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                t = threading.Thread(
                    target=self._work, name=f"{self._name}-{self._started}", daemon=True
                )
                self._threads.append(t)
                self._started += 1
                t.start()
            else:
                self._idle -= 1
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # pragma: no cover - jobs catch their own errors
                log.exception("unexpected error in a handler thread")
            with self._lock:
                me = threading.current_thread()
                if me in self._written_off:  # replaced meanwhile: leave the pool
                    self._written_off.discard(me)
                    return
                self._idle += 1

    def shutdown(self) -> None:
        """Ask idle threads to exit (running ones exit when their job ends)."""
        for _ in self._threads:
            self._jobs.put(None)


class AsyncRunner:
    """One event loop in its own daemon thread, for every ``async def`` handler of an engine."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def submit(
        self, coro: Coroutine[Any, Any, Any], done: Callable[[BaseException | None, Any], None]
    ) -> concurrent.futures.Future[Any]:
        """Schedule ``coro``; call ``done(exc, value)`` from the loop thread when it ends.

        Returns its future: ``cancel()`` on it cancels the coroutine (a step timeout).
        """
        loop = self._ensure_loop()
        fut = asyncio.run_coroutine_threadsafe(coro, loop)

        def finished(f: Any) -> None:
            try:
                value = f.result()
            except BaseException as exc:
                done(exc, None)
            else:
                done(None, value)

        fut.add_done_callback(finished)
        return fut

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name=self._name, daemon=True).start()
                self._loop = loop
            return self._loop

    def shutdown(self) -> None:
        """Stop the loop (pending coroutines are abandoned: their tasks' leases will expire)."""
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None
