"""The rules of a definition, each written once: name patterns, step options, their defaults.

The name patterns are ``_names``' (re-exported here for the definitions' checks). The database
is the authority (``workflow._validate_name``, ``workflow._normalize_step`` and the
CHECK constraints of the definition tables). These are the same rules in Python, so that a
workflow written in code fails when its class statement runs, before any connection is made,
with the SQLSTATE the server would have used. Every Python check of a definition takes its
pattern, option set and defaults from here: the decorator, the list form and ``FlowBuilder``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from singularity_workflow._names import FLOW_NAME, QUEUE_NAME, RESOURCE_NAME, STEP_NAME

__all__ = [
    "CONTROL_OPTIONS",
    "EVENT_KEY",
    "EVENT_NAME",
    "FLOW_NAME",
    "INT_MAX",
    "OPTION_NAMES",
    "QUEUE_NAME",
    "RESOURCE_NAME",
    "SLEEP_PATH",
    "STEP_DEFAULTS",
    "STEP_NAME",
    "STEP_OPTIONS",
    "resource_list",
]

#: The largest value an ``integer`` column holds (attempts, delays, timeouts).
INT_MAX: Final = 2_147_483_647

#: The options of a step besides its dependencies: ``@step``'s keywords, the list form's
#: option keys and ``FlowBuilder.add_step``'s keyword arguments.
STEP_OPTIONS: Final = frozenset(
    {
        "execution",
        "queue",
        "resources",
        "max_attempts",
        "timeout",
        "base_delay",
        "start_delay",
        "map",
        "priority",
        "wait_for",
        "event_key",
        "wait_timeout",
        "sleep",
        "condition",
        "run_if_skipped",
    }
)
#: The control-flow options (docs/control-flow.md): a step carries them only when given, and a
#: workflow's ``step_defaults`` cannot set them (they make a step what it is).
CONTROL_OPTIONS: Final = frozenset(
    {"wait_for", "event_key", "wait_timeout", "sleep", "condition", "run_if_skipped"}
)
#: ``definition_rules()`` control patterns: an event name, a wait step's key, a sleep path.
EVENT_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
EVENT_KEY: Final = re.compile(r"run_id|input(\.[A-Za-z_][A-Za-z0-9_]{0,62}){1,8}")
SLEEP_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62}){1,8}")
#: Every option a step declaration may carry (``STEP_OPTIONS`` and ``depends_on``).
OPTION_NAMES: Final = STEP_OPTIONS | {"depends_on"}

#: What an option left out means, for steps defined in Python.
STEP_DEFAULTS: Final[Mapping[str, Any]] = {
    "depends_on": (),
    "execution": "local",  # the Elixir library's default, and the server's (definition_rules)
    "queue": None,
    "resources": (),
    "max_attempts": 3,
    "timeout": 60,
    "base_delay": 1,
    "start_delay": 0,
    "map": False,
    # No default: a step that names no priority keeps the one the database has for it.
    "priority": None,
    # Control flow: none unless given (a wait step's event_key defaults to "run_id").
    "wait_for": None,
    "event_key": None,
    "wait_timeout": None,
    "sleep": None,
    "condition": None,
    "run_if_skipped": False,
}

#: The least and greatest step priority (``definition_rules()`` ``priority_range``).
PRIORITY_RANGE: Final = (-1000, 1000)


def resource_list(value: Any) -> list[Any]:
    """Normalise resources given as names, ``{"gpu": True}`` or ``[("gpu", True)]`` pairs.

    Returns the wanted entries in the order given; entries are not checked (callers check them
    against ``RESOURCE_NAME``, or leave that to the server). Something that is no collection at
    all comes back as a one-entry list, so it fails the same name check as a bad entry.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [key for key, wanted in value.items() if wanted]
    try:
        entries = list(value)
    except TypeError:
        return [value]
    names: list[Any] = []
    for entry in entries:
        if isinstance(entry, tuple) and len(entry) == 2:
            if entry[1]:
                names.append(entry[0])
        else:
            names.append(entry)
    return names
