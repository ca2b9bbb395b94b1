"""Workers: claim tasks from queues, run their step handlers, report the results in batches.

The parts, each one job (the architecture document draws how they fit):

* :mod:`._worker`: the public :class:`Worker` (queues, signals, graceful shutdown);
* :mod:`._engine`: the claim loop shared by workers and ``execute`` (:class:`Engine`);
* :mod:`._flush`: reporting finished tasks in batches (:class:`Flusher`);
* :mod:`._leases`: extending the leases of running tasks (:class:`LeaseKeeper`);
* :mod:`._pools`: where handlers run (daemon threads, one event loop);
* :mod:`._handlers`: finding a task's handler and shaping its result;
* :mod:`._state`: what the engine's threads share (tasks in flight, the loop's connection).

Wake-ups come from the package's one notifier (``singularity_workflow._notify``).
"""

from singularity_workflow.worker._engine import Engine
from singularity_workflow.worker._handlers import (
    HandlerNotFound,
    RegistryResolver,
    Resolver,
    StepHandler,
    def_resolver,
    format_error,
)
from singularity_workflow.worker._state import EngineStats, Source
from singularity_workflow.worker._worker import Worker, default_worker_id, import_modules

__all__ = [
    "Engine",
    "EngineStats",
    "HandlerNotFound",
    "RegistryResolver",
    "Resolver",
    "Source",
    "StepHandler",
    "Worker",
    "def_resolver",
    "default_worker_id",
    "format_error",
    "import_modules",
]
