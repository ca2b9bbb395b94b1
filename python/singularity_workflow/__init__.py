"""singularity-workflow: a workflow (DAG) engine inside PostgreSQL, with a thin Python client.

The state machine is SQL (schema ``workflow``); this package installs it and calls it. The public
surface is what ``__all__`` lists; modules whose names start with ``_`` are private.

Module-level functions that need a database (``execute``, ``get_run_status``,
``cancel_workflow_run`` ...) use a default ``Client()`` over ``DATABASE_URL`` unless given
``client=``.
"""

from singularity_workflow._client import Client
from singularity_workflow._errors import (
    DefinitionError,
    DependencyCycle,
    DuplicateStep,
    EmptyFlow,
    FlowExists,
    FlowInUse,
    FlowNotFound,
    FlowShapeMismatch,
    InvalidCron,
    InvalidInput,
    InvalidName,
    InvalidOption,
    InvalidState,
    KeyConflict,
    PayloadTooLarge,
    RunFailed,
    RunIdConflict,
    RunNotFound,
    RunTimeout,
    ScheduleNotFound,
    SelfDependency,
    TaskGraphNotFound,
    UnknownDependency,
    UnknownTimeZone,
    WorkflowError,
)
from singularity_workflow._install import install, render_install_sql
from singularity_workflow._lifecycle import (
    cancel_workflow_run,
    enforce_deadlines,
    get_run_status,
    list_workflow_runs,
    pause_workflow_run,
    resume_workflow_run,
    retry_failed_workflow,
)
from singularity_workflow._listen import (
    Listener,
    ack_message,
    listen,
    notify_only,
    read_channel,
    read_events,
    send_with_notify,
    unlisten,
)
from singularity_workflow._messages import ChannelMessage, Notification, WorkflowEvent
from singularity_workflow._run import RunResult, execute, execute_async
from singularity_workflow._types import (
    ClaimedTask,
    RunStatus,
    Schedule,
    ScheduleInfo,
    StepStatus,
    WorkflowRun,
)
from singularity_workflow.definitions import (
    StepDef,
    Workflow,
    WorkflowDef,
    register_handlers,
    step,
    workflow_def,
)
from singularity_workflow.definitions.builder import (
    FlowBuilder,
    MissingStepFunctions,
    execute_dynamic,
)
from singularity_workflow.goals import (
    DecompositionError,
    DecompositionTimeout,
    Orchestrator,
    TaskGraph,
    WorkflowComposer,
)
from singularity_workflow.worker import Worker

__version__ = "0.2.0.dev0"

__all__ = [
    "ChannelMessage",
    "ClaimedTask",
    "Client",
    "DecompositionError",
    "DecompositionTimeout",
    "DefinitionError",
    "DependencyCycle",
    "DuplicateStep",
    "EmptyFlow",
    "FlowExists",
    "FlowBuilder",
    "FlowInUse",
    "FlowNotFound",
    "FlowShapeMismatch",
    "InvalidCron",
    "InvalidInput",
    "InvalidName",
    "InvalidOption",
    "InvalidState",
    "KeyConflict",
    "MissingStepFunctions",
    "Orchestrator",
    "Listener",
    "Notification",
    "PayloadTooLarge",
    "RunFailed",
    "RunIdConflict",
    "RunNotFound",
    "RunResult",
    "RunStatus",
    "RunTimeout",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFound",
    "SelfDependency",
    "StepDef",
    "TaskGraph",
    "TaskGraphNotFound",
    "StepStatus",
    "UnknownDependency",
    "UnknownTimeZone",
    "Worker",
    "Workflow",
    "WorkflowComposer",
    "WorkflowDef",
    "WorkflowError",
    "WorkflowEvent",
    "WorkflowRun",
    "__version__",
    "ack_message",
    "cancel_workflow_run",
    "enforce_deadlines",
    "execute",
    "execute_async",
    "execute_dynamic",
    "get_run_status",
    "install",
    "list_workflow_runs",
    "listen",
    "notify_only",
    "pause_workflow_run",
    "read_channel",
    "read_events",
    "register_handlers",
    "render_install_sql",
    "resume_workflow_run",
    "retry_failed_workflow",
    "send_with_notify",
    "step",
    "unlisten",
    "workflow_def",
]
