"""Workers: claim tasks from queues, run their step handlers, report the results in batches.

The parts, each one job (the architecture document draws how they fit):

* :mod:`._worker`: the public :class:`Worker` (queues, signals, graceful shutdown);
* :mod:`._engine`: the claim loop shared by workers and ``execute`` (:class:`Engine`);
* :mod:`._flush`: reporting finished tasks in batches (:class:`Flusher`);
* :mod:`._leases`: extending the leases of running tasks, watching step timeouts;
* :mod:`._registration`: the process's row in ``workflow.workers`` and its heartbeat;
* :mod:`._pools`: where handlers run (daemon threads, one event loop);
* :mod:`._handlers`: finding a task's handler and shaping its result;
* :mod:`._context`: the :class:`StepContext` a handler may ask for;
* :mod:`._state`: what the engine's threads share (tasks in flight, the loop's connection).

Wake-ups come from the package's one notifier (``singularity_workflow._notify``).
"""

from singularity_workflow.worker._context import StepContext
from singularity_workflow.worker._engine import Engine, StepTimeout
from singularity_workflow.worker._handlers import (
    HandlerNotFound,
    RegistryResolver,
    Resolver,
    StepHandler,
    def_resolver,
    format_error,
)
from singularity_workflow.worker._registration import Registration
from singularity_workflow.worker._state import EngineStats, Source
from singularity_workflow.worker._worker import (
    EXIT_STUCK_HANDLERS,
    Worker,
    WorkerStuck,
    default_worker_id,
    import_modules,
    registered_handlers,
)

__all__ = [
    "EXIT_STUCK_HANDLERS",
    "Engine",
    "EngineStats",
    "HandlerNotFound",
    "Registration",
    "RegistryResolver",
    "Resolver",
    "Source",
    "StepContext",
    "StepHandler",
    "StepTimeout",
    "Worker",
    "WorkerStuck",
    "def_resolver",
    "default_worker_id",
    "format_error",
    "import_modules",
    "registered_handlers",
]
