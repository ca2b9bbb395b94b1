"""Install and upgrade the engine's schema: pgmq, the migrations, then the functions.

Everything an install does is rendered as ONE SQL script (``render_install_sql``) so that a DBA can
review it and run it with ``psql -v ON_ERROR_STOP=1 -f install.sql``, and ``install`` runs that very
script, so the two paths cannot drift. The script is safe to run again: a second run applies no
migration, reloads the functions (``create or replace``) and reapplies the grants.

Layout of the SQL directory (``sql_dir()``)::

    migrations/NNNN_name.sql   tables, types, indexes; forward-only, applied once each, in order
    functions/<name>.sql       one ``create or replace function`` each, reloaded on every install
    grants.sql                 the roles' privileges, reapplied on every install after the functions
    releases/<version>.sql     the install script of each release, as it was generated then

The installer leaves exactly the functions that have files: in the transaction that reloads them,
it drops every function of schema ``workflow`` that no file (re)created, so a function whose file
was removed, or the old overload of one whose signature changed, does not survive an upgrade.
(Hence functions live in ``functions/`` only: one created by a migration would be dropped.)
``render_upgrade_sql`` renders what ``install`` runs on a database at a given release, for DBAs
who review and apply it with psql.

Concurrency: every transaction of the script first takes ``pg_advisory_xact_lock(LOCK_KEY)``, and
``install`` holds the same key as a session lock for its whole run (advisory locks are re-entrant
within a session, whatever their level). Two installers, Python or psql, therefore never interleave;
and because a migration's version row is inserted before its body runs, in the same transaction,
a second installer that got past the lock anyway would find the row and skip the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "LOCK_KEY",
    "InstallError",
    "Migration",
    "function_files",
    "install",
    "migrations",
    "pending_migrations",
    "releases",
    "render_install_sql",
    "render_upgrade_sql",
    "sql_dir",
]

#: Advisory lock key shared by every installer ("SWINST" in ASCII). A fixed literal rather than
#: ``hashtext(...)``, whose output is not promised to be stable across server versions.
LOCK_KEY = 0x5357_494E_5354

_MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<slug>[a-z0-9_]+)\.sql$")
# Top-level transaction control in a migration would end the installer's transaction (and cannot
# run inside the DO block that guards the body), so it is refused with a clear message.
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(begin|commit|rollback|start\s+transaction)\s*;", re.IGNORECASE | re.MULTILINE
)


class InstallError(Exception):
    """The SQL directory or the target database is not in a state we can install into."""


@dataclass(frozen=True)
class Migration:
    """One ``migrations/NNNN_name.sql`` file: its version number, its name (file stem), its path."""

    version: int
    name: str
    path: Path


def sql_dir() -> Path:
    """Return the directory holding ``migrations/`` and ``functions/``.

    An installed wheel carries the SQL as package data (``singularity_workflow/sql``). An editable
    install of a checkout does not copy it, so there the repository's own ``sql/`` directory, two
    levels above this package, is used: edits to the SQL take effect without reinstalling.
    """
    packaged = Path(str(resources.files(__package__ or "singularity_workflow"))) / "sql"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parent.parent.parent / "sql"
    if repo.is_dir():
        return repo
    raise InstallError(f"SQL files not found: neither {packaged} nor {repo} is a directory")


def _resolve(directory: Path | None) -> Path:
    """Return ``directory``, or ``sql_dir()`` when no override was given."""
    return directory if directory is not None else sql_dir()


def migrations(directory: Path | None = None) -> list[Migration]:
    """List the migration files of ``directory`` (default ``sql_dir()``) in version order.

    A ``.sql`` file whose name does not match ``NNNN_name.sql``, or two files with one version,
    is an error rather than something to skip: a silently ignored migration is a schema bug.
    """
    base = _resolve(directory) / "migrations"
    if not base.is_dir():
        return []
    found: dict[int, Migration] = {}
    for path in sorted(base.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if match is None:
            raise InstallError(f"{path}: migration files must be named NNNN_lowercase_name.sql")
        version = int(match["version"])
        if version in found:
            raise InstallError(f"{path}: version {version} also used by {found[version].path}")
        found[version] = Migration(version, path.stem, path)
    return [found[v] for v in sorted(found)]


def function_files(directory: Path | None = None) -> list[Path]:
    """List ``functions/*.sql``: helpers (``_*.sql``) first, then the rest, each group by name.

    The order is for readers of the rendered script (helpers before their callers); loading does
    not depend on it, see ``_render_functions``.
    """
    base = _resolve(directory) / "functions"
    if not base.is_dir():
        return []
    paths = sorted(base.glob("*.sql"), key=lambda p: p.name)
    return [p for p in paths if p.name.startswith("_")] + [
        p for p in paths if not p.name.startswith("_")
    ]


_LANGUAGE_SQL = re.compile(r"\blanguage\s+'?sql'?(?![a-z0-9_])", re.IGNORECASE)


def _render_functions(files: list[Path]) -> str:
    """Render the function files as one transaction in which load order does not matter.

    Why three passes: with ``check_function_bodies`` on (the default), a ``language sql`` body is
    analysed when it is created and fails if a function it calls does not exist yet, so a SQL
    wrapper such as ``complete_task`` could not be loaded before ``complete_tasks``. A PL/pgSQL
    body is only parsed at creation (calls are resolved when it runs), so it loads in any order.
    Hence: (1) the ``language sql`` files with checks off, so that every name exists; (2) the
    other files with checks on, which validates their syntax; (3) the ``language sql`` files
    again with checks on, now that everything they call exists, which validates them. Each body
    is thus checked once, against the complete set of functions, whatever the file names.
    Everything is one transaction, so a database never has half of a new set of functions.
    """
    texts = {path: path.read_text(encoding="utf-8").rstrip() for path in files}
    sql_files = [p for p in files if _LANGUAGE_SQL.search(texts[p])]
    other_files = [p for p in files if p not in sql_files]

    def load(paths: list[Path]) -> str:
        return "".join(f"-- functions/{p.name}\n{texts[p]}\n\n" for p in paths)

    body = ""
    if sql_files:
        body += "-- pass 1: language sql functions, unchecked, so that every name exists\n"
        body += "set local check_function_bodies = off;\n\n" + load(sql_files)
    body += "-- pass 2: the other functions, checked\nset local check_function_bodies = on;\n\n"
    body += load(other_files)
    if sql_files:
        body += "-- pass 3: language sql functions again, now checked against the complete set\n"
        body += load(sql_files)
    body += _DROP_STALE_FUNCTIONS
    return "-- functions\n" + _locked_transaction(body)


# Every pg_proc row this transaction created or replaced carries its transaction id as xmin
# (create or replace always rewrites the row), and age(xmin) is 0 exactly for those rows: the
# others are functions no file defines any more (a removed file, or the old overload left behind
# by a signature change). Functions that belong to an extension are not the installer's. A stale
# function that something still depends on makes the drop, and so the whole transaction, fail:
# nothing is dropped with cascade behind a DBA's back.
_DROP_STALE_FUNCTIONS = """\
-- drop the functions no file defines (removed files, old overloads), in the same transaction
do $sw_drop_stale$
declare
    sw_function record;
begin
    for sw_function in
        select p.oid, n.nspname, p.proname, p.prokind,
            pg_catalog.pg_get_function_identity_arguments(p.oid) as arguments
        from pg_catalog.pg_proc as p
        join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = 'workflow'
            and pg_catalog.age(p.xmin) <> 0
            and not exists (
                select 1 from pg_catalog.pg_depend as d
                where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                    and d.objid = p.oid and d.deptype = 'e'
            )
        order by p.proname, arguments
    loop
        raise notice 'dropping %.%(%): no function file defines it',
            sw_function.nspname, sw_function.proname, sw_function.arguments;
        execute format('drop %s %I.%I(%s)',
            case sw_function.prokind
                when 'a' then 'aggregate' when 'p' then 'procedure' else 'function' end,
            sw_function.nspname, sw_function.proname, sw_function.arguments);
    end loop;
end
$sw_drop_stale$;
"""


def _render_grants(directory: Path) -> str:
    """Render ``grants.sql`` as its own transaction (empty when the directory has none)."""
    path = directory / "grants.sql"
    if not path.is_file():
        return ""
    body = path.read_text(encoding="utf-8").rstrip()
    header = "-- grants.sql: the roles' privileges, reapplied on every install\n"
    return header + _locked_transaction(body)


def _literal(text: str) -> str:
    """Quote ``text`` as a standard SQL string literal (the script is rendered without a server)."""
    return "'" + text.replace("'", "''") + "'"


def _dollar_quote(body: str, tag: str, *, what: str) -> str:
    """Wrap ``body`` in ``$tag$ … $tag$``, refusing if the body itself contains that delimiter."""
    delimiter = f"${tag}$"
    if delimiter in body:
        raise InstallError(f"{what} contains the dollar-quote delimiter {delimiter}")
    return f"{delimiter}\n{body}\n{delimiter}"


def _pgmq_sql() -> str:
    """Return pgmq's plain-SQL install script, as shipped in the ``pgmq`` package on PyPI."""
    return (resources.files("pgmq") / "sql" / "pgmq.sql").read_text(encoding="utf-8")


def _locked_transaction(body: str) -> str:
    """Wrap ``body`` in its own transaction that first takes the installers' advisory lock."""
    return f"begin;\nselect pg_advisory_xact_lock({LOCK_KEY});\n{body.rstrip()}\ncommit;\n"


def _render_pgmq() -> str:
    """Render the pgmq section: the extension where offered, else pgmq's plain SQL, once.

    pgmq's SQL is not idempotent (it creates types without ``if not exists``), so it runs only
    when neither the extension nor a plain install (``pgmq.meta``) is present. Its optional
    insert-notify trigger is deliberately not enabled: it makes concurrent senders queue on one
    throttle row, and the engine issues its own ``pg_notify`` instead. An existing plain install
    is left as it is: upgrading pgmq itself is outside this installer.
    """
    body = _dollar_quote(_pgmq_sql(), "sw_pgmq_body", what="pgmq/sql/pgmq.sql")
    block = f"""\
do $sw_pgmq$
begin
    if exists (select 1 from pg_catalog.pg_extension where extname = 'pgmq') then
        raise notice 'pgmq: extension already installed';
    elsif pg_catalog.to_regclass('pgmq.meta') is not null then
        raise notice 'pgmq: plain-SQL install already present';
    elsif exists (select 1 from pg_catalog.pg_available_extensions where name = 'pgmq') then
        create extension if not exists pgmq;
    else
        execute {body};
    end if;
end
$sw_pgmq$;"""
    if "$sw_pgmq$" in _pgmq_sql():
        raise InstallError("pgmq/sql/pgmq.sql contains the dollar-quote delimiter $sw_pgmq$")
    return "-- pgmq: the queue layer\n" + _locked_transaction(block)


def _render_migration(migration: Migration) -> str:
    """Render one migration as its own transaction that runs the body only if not yet recorded.

    A plain script cannot make DDL conditional, so the body runs through ``execute`` of a
    dollar-quoted string inside a DO block. The version row is inserted first: a concurrent
    installer blocks on it (primary key) and then skips the body. An error is re-raised with the
    migration's name in front of the server's message, keeping its SQLSTATE, detail and hint.
    """
    body = migration.path.read_text(encoding="utf-8")
    if _TRANSACTION_CONTROL.search(body):
        raise InstallError(
            f"{migration.path}: remove begin/commit; the installer runs each migration "
            "in its own transaction"
        )
    if "$sw_install$" in body:
        raise InstallError(f"{migration.path} contains the dollar-quote delimiter $sw_install$")
    quoted = _dollar_quote(body, f"sw_migration_{migration.version:04d}", what=str(migration.path))
    block = f"""\
do $sw_install$
declare
    sw_detail text;
    sw_hint text;
begin
    insert into workflow.schema_migrations (version, name)
    values ({migration.version}, {_literal(migration.name)})
    on conflict (version) do nothing;
    if found then
        execute {quoted};
    end if;
exception when others then
    get stacked diagnostics sw_detail = pg_exception_detail, sw_hint = pg_exception_hint;
    raise exception using
        errcode = sqlstate,
        message = {_literal(f"migration {migration.name}: ")} || sqlerrm,
        detail = sw_detail,
        hint = sw_hint;
end
$sw_install$;"""
    return f"-- migration {migration.name}\n" + _locked_transaction(block)


def render_install_sql(include_pgmq: bool = True, *, sql_dir: Path | None = None) -> str:
    """Render the whole install (pgmq, migrations, functions) as one psql-runnable script.

    ``sql_dir`` overrides where the migrations and functions are read from (tests use it to
    simulate upgrades). ``include_pgmq=False`` leaves pgmq out for servers where it is managed
    separately. Running the script twice applies each migration once and reloads the functions.
    """
    directory = _resolve(sql_dir)
    parts = [
        "-- singularity-workflow install script, generated by singularity_workflow._install.\n"
        "-- Run with: psql -v ON_ERROR_STOP=1 -f install.sql   (running it again is safe)\n"
    ]
    if include_pgmq:
        parts.append(_render_pgmq())
    parts.append(
        "-- bookkeeping: which migrations this database has\n"
        + _locked_transaction(
            "create schema if not exists workflow;\n"
            "create table if not exists workflow.schema_migrations (\n"
            "    version integer primary key,\n"
            "    name text not null,\n"
            "    applied_at timestamptz not null default now()\n"
            ");"
        )
    )
    parts.extend(_render_migration(m) for m in migrations(directory))
    files = function_files(directory)
    if files:
        parts.append(_render_functions(files))
    grants = _render_grants(directory)
    if grants:
        parts.append(grants)
    return "\n".join(parts)


_RELEASE_MIGRATION = re.compile(r"^-- migration (?P<version>\d{4})_[a-z0-9_]+$", re.MULTILINE)


def releases(directory: Path | None = None) -> dict[str, list[int]]:
    """Map each release of ``releases/<version>.sql`` to the migration versions its script has."""
    base = _resolve(directory) / "releases"
    if not base.is_dir():
        return {}
    return {
        path.stem: sorted(int(m["version"]) for m in _RELEASE_MIGRATION.finditer(path.read_text()))
        for path in sorted(base.glob("*.sql"))
    }


def render_upgrade_sql(from_release: str, *, sql_dir: Path | None = None) -> str:
    """Render what ``install`` runs on a database at ``from_release``, as one psql script.

    That is: the migrations the release did not have, every function file, the drop of the
    functions no file defines, and the grants. pgmq and the migrations the release already
    carried are left out (the installer would skip them there), so a DBA reviews only what
    changes. The script first refuses (WF010) a database that lacks one of the release's
    migrations, i.e. one older than the release; running it twice is safe, as the install is.
    """
    directory = _resolve(sql_dir)
    known = releases(directory)
    if from_release not in known:
        raise InstallError(
            f"unknown release {from_release!r}: known are {', '.join(known) or 'none'}"
        )
    had = known[from_release]
    # Two statements: the count is planned only when the table exists (PL/pgSQL plans lazily).
    guard = f"""\
do $sw_upgrade_guard$
declare
    sw_found bigint := 0;
begin
    if pg_catalog.to_regclass('workflow.schema_migrations') is not null then
        select count(*) into sw_found from workflow.schema_migrations
        where version = any (array[{", ".join(map(str, had))}]::integer[]);
    end if;
    if sw_found < {len(had)} then
        raise exception 'this script upgrades a database at release {from_release} or later'
            using errcode = 'WF010',
                hint = 'Install a new database with install.sql (singularity-workflow sql).';
    end if;
end
$sw_upgrade_guard$;"""
    parts = [
        f"-- singularity-workflow upgrade script from release {from_release}, generated by\n"
        "-- singularity_workflow._install (singularity-workflow sql --upgrade-from "
        f"{from_release}).\n"
        "-- Run with: psql -v ON_ERROR_STOP=1 -f upgrade.sql   (running it again is safe)\n",
        f"-- guard: the database is at release {from_release}\n" + _locked_transaction(guard),
    ]
    parts.extend(_render_migration(m) for m in migrations(directory) if m.version not in had)
    files = function_files(directory)
    if files:
        parts.append(_render_functions(files))
    grants = _render_grants(directory)
    if grants:
        parts.append(grants)
    return "\n".join(parts)


def pending_migrations(conn: psycopg.Connection[Any], *, sql_dir: Path | None = None) -> list[str]:
    """Return the names of the migrations not yet recorded in ``workflow.schema_migrations``."""
    directory = _resolve(sql_dir)
    applied = _applied_versions(conn)
    return [m.name for m in migrations(directory) if m.version not in applied]


def _applied_versions(conn: psycopg.Connection[Any]) -> set[int]:
    """Return the recorded migration versions (empty when the bookkeeping table does not exist)."""
    row = conn.execute("select pg_catalog.to_regclass('workflow.schema_migrations')").fetchone()
    if row is None or row[0] is None:
        return set()
    table = sql.Identifier("workflow", "schema_migrations")
    query = sql.SQL("select version from {}").format(table)
    return {int(v) for (v,) in conn.execute(query).fetchall()}


def install(
    conninfo_or_connection: str | psycopg.Connection[Any],
    *,
    dry_run: bool = False,
    sql_dir: Path | None = None,
    include_pgmq: bool = True,
) -> list[str]:
    """Install or upgrade the schema; return the migrations applied (with ``dry_run``: pending).

    Takes a connection string or an open connection. The script carries its own begin/commit
    pairs, so it is sent in one simple-protocol query on an autocommit connection; a given
    connection that is idle in manual-commit mode is switched to autocommit for the call and
    restored. A session-level advisory lock makes concurrent installers run one after another,
    which also makes "pending before the run" exactly "applied by this run".
    """
    directory = _resolve(sql_dir)
    if isinstance(conninfo_or_connection, str):
        with psycopg.connect(conninfo_or_connection, autocommit=True) as conn:
            return _install_locked(conn, dry_run, directory, include_pgmq)
    conn = conninfo_or_connection
    if conn.autocommit:
        return _install_locked(conn, dry_run, directory, include_pgmq)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise InstallError("install() needs a connection that is not inside a transaction")
    conn.autocommit = True
    try:
        return _install_locked(conn, dry_run, directory, include_pgmq)
    finally:
        conn.autocommit = False


def _install_locked(
    conn: psycopg.Connection[Any], dry_run: bool, directory: Path, include_pgmq: bool
) -> list[str]:
    """Run the install under the session advisory lock (see ``install``)."""
    script = render_install_sql(include_pgmq, sql_dir=directory)
    conn.execute("select pg_advisory_lock(%s)", [LOCK_KEY])
    try:
        known = {m.version for m in migrations(directory)}
        unknown = sorted(_applied_versions(conn) - known)
        if unknown:
            raise InstallError(
                f"the database has migrations this package does not know ({unknown}): "
                "it was installed by a newer version; refusing to load older functions"
            )
        pending = pending_migrations(conn, sql_dir=directory)
        if dry_run:
            return pending
        try:
            # No parameters: psycopg sends this with the simple query protocol, which accepts
            # many statements, including the script's own begin/commit, in one message.
            conn.execute(script.encode("utf-8"))
        except psycopg.Error:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                conn.execute("rollback")
            raise
        return pending
    finally:
        if not conn.closed:
            conn.execute("select pg_advisory_unlock(%s)", [LOCK_KEY])
