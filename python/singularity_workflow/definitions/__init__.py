"""Flow definitions written in Python: the decorator, the list form, the rules, the registry.

* ``Workflow`` and ``@step`` (``_declare``): a class whose methods are steps;
* the Elixir library's list form, ``__workflow_steps__`` (``_declare``);
* ``StepDef`` / ``WorkflowDef``, the checks and the handler ``registry`` (``_model``);
* the rules every check uses, each written once: name patterns, the step option set and its
  defaults, resource normalisation (``_rules``).

This package does no I/O and imports nothing above ``_errors``, so the client and the worker
can use it. ``FlowBuilder`` and ``execute_dynamic`` (flows built in the database, one call at a
time) need a client and an executor and so live one layer up, in ``definitions.builder``; the
package root ``singularity_workflow`` exports them as before.
"""

from singularity_workflow.definitions._declare import (
    StepDefaults,
    Workflow,
    discover,
    step,
    workflow_def,
)
from singularity_workflow.definitions._model import (
    Execution,
    Handler,
    StepDef,
    WorkflowDef,
    find_handler,
    register_handlers,
    registry,
)
from singularity_workflow.definitions._rules import (
    FLOW_NAME,
    OPTION_NAMES,
    QUEUE_NAME,
    RESOURCE_NAME,
    STEP_DEFAULTS,
    STEP_NAME,
    STEP_OPTIONS,
    resource_list,
)

__all__ = [
    "FLOW_NAME",
    "OPTION_NAMES",
    "QUEUE_NAME",
    "RESOURCE_NAME",
    "STEP_DEFAULTS",
    "STEP_NAME",
    "STEP_OPTIONS",
    "Execution",
    "Handler",
    "StepDef",
    "StepDefaults",
    "Workflow",
    "WorkflowDef",
    "discover",
    "find_handler",
    "register_handlers",
    "registry",
    "resource_list",
    "step",
    "workflow_def",
]
