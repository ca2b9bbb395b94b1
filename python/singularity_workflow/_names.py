"""The name rules of the engine, each written once on the Python side.

The database is the authority: ``workflow._validate_name``, ``workflow._normalize_step`` and the
CHECK constraints of migration 0001. Python checks names before it sends them (a ``Workflow``
class at import, a channel before LISTEN, a dashboard URL before a query) with these patterns,
which every module takes from here. A leaf module: it imports nothing of the package.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CHANNEL_NAME",
    "FLOW_NAME",
    "QUEUE_NAME",
    "RESERVED_CHANNEL_PREFIXES",
    "RESOURCE_NAME",
    "STEP_NAME",
]

#: A flow slug.
FLOW_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
#: A step slug ("run" is refused besides: it names the run input in a step's input).
STEP_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: A queue name (a pgmq queue name once prefixed, within PostgreSQL's 63-byte identifiers).
QUEUE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,46}$")
#: A resource a step may require and a worker offer.
RESOURCE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
#: A messaging channel an application names (its queue is prefixed, so it is shorter).
CHANNEL_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,41}$")
#: Prefixes of the engine's own NOTIFY channels, which an application channel may not take.
RESERVED_CHANNEL_PREFIXES: Final = ("workflow_q_", "workflow_run_")
