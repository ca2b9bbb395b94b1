"""Every call the client makes to the engine, each defined once as an ``_db.Operation``.

One module per concern: ``definitions`` (flows and steps), ``runs`` (starting runs and their
lifecycle), ``tasks`` (the worker's hot path), ``messaging`` (channels and the event log) and
``task_graphs`` (the goal orchestrator's stored graphs). Each function checks and converts its
arguments, and returns the SQL, the parameters and the decoder of the result; it does no I/O.
``Client`` executes them on a ``psycopg.Connection``; an async client executes the very same
objects with ``_db.execute_async``.

These modules import only ``_types``, ``_errors``, ``_messages`` (value types) and ``_db``.
"""
