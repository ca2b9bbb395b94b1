"""singularity-workflow: a workflow (DAG) engine inside PostgreSQL, with a thin Python client.

The state machine is SQL (schema ``workflow``); this package installs it and calls it. The public
surface is what ``__all__`` lists; modules whose names start with ``_`` are private.
"""

from singularity_workflow._install import install, render_install_sql

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "install", "render_install_sql"]
