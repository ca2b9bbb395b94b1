"""Goal-driven orchestration (HTDAG): a goal becomes a task graph, the graph a flow, then a run.

A *decomposer* turns a goal into task dicts; :class:`Orchestrator` checks them, stores the graph
(``workflow.store_task_graph``) for preview and approval, builds it into a flow and executes it;
:class:`WorkflowComposer` is the one-call wrapper. ``goals.decomposers`` holds ready-made
decomposers: rule-based, an OpenAI-compatible chat client, and a fake chat server for tests.

The public surface is this package's ``__all__``; ``singularity_workflow`` exports the
orchestrator's names too. This package sits above the client and the executor and below the CLI.
"""

from singularity_workflow.goals._orchestrator import (
    DecompositionError,
    DecompositionTimeout,
    Orchestrator,
    TaskGraph,
    WorkflowComposer,
    flatten_tasks,
    graph_flow_slug,
    run_decomposer,
)
from singularity_workflow.goals.decomposers import (
    DEFAULT_SYSTEM_PROMPT,
    Decomposer,
    FakeChatServer,
    OpenAIChatDecomposer,
    RuleBasedDecomposer,
    parse_task_json,
    rule_based_decomposer,
)

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "DecompositionError",
    "DecompositionTimeout",
    "Decomposer",
    "FakeChatServer",
    "OpenAIChatDecomposer",
    "Orchestrator",
    "RuleBasedDecomposer",
    "TaskGraph",
    "WorkflowComposer",
    "flatten_tasks",
    "graph_flow_slug",
    "parse_task_json",
    "rule_based_decomposer",
    "run_decomposer",
]
