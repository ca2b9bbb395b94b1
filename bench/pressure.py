"""Pressure: a steady load while something holds back vacuum; what the hot tables and claims do.

Why: a queue in PostgreSQL lives by its dead tuples. When anything holds the cluster's xmin (an
idle-in-transaction session, long REPEATABLE READ readers, a logical slot, a replica with
hot_standby_feedback) no dead row version can be removed, the hot tables grow and every claim
walks further through dead versions. This bench measures that, phase by phase, on one database.

What it does, in a throwaway database it creates and drops:

* flow ``pressure``: one distributed step on queue ``pressure``;
* a producer starts ``--rate`` runs per second (``start_flows``, one call per 100 ms tick);
* a worker loops ``claim_tasks(qty=--batch)`` and one ``complete_tasks`` per batch (no handler
  work), timing every claim that returned a task;
* a housekeeper does what workers and a cron job do: ``workflow.maintain()`` every 5 s and
  ``workflow.prune(--keep)`` until it deletes nothing, then waits 5 s;
* phases, one after the other: (a) clean; (b) an idle-in-transaction session holding an xid
  (``--held``, 120 s by default, as the issue asks); (c) four REPEATABLE READ readers, each one
  transaction for the whole phase, scanning the hot tables every 0.5 s; (d) recovery;
* a sampler reads, every second, the completions, the hot tables' size, dead tuples and update
  counters (``pg_stat_user_tables``), and the wait events of the database's active backends.

Reported per phase: completions/s, claim p50/p95/p99, dead tuples and size per hot table at the
end of the phase, the top wait events, the oldest backend xmin age, and the load average. Over the
whole run: ``n_tup_hot_upd`` / ``n_tup_upd`` per table. ``--target`` picks where it runs:
``server`` (the server of ``--database-url``, with whatever autovacuum setting it has), ``temp``
(a temporary cluster made with initdb on a free port, autovacuum on with production-like settings,
torn down afterwards) or ``both`` (the default, one after the other). Output: tables on stdout,
``build/bench/pressure.json`` and, with ``--markdown``, a Markdown table for docs/operations.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from singularity_workflow import install

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "build" / "bench" / "pressure.json"
QUEUE = "pressure"
TABLES = ("workflow.runs", "workflow.step_states", "workflow.tasks", "workflow.events",
          f"pgmq.q_{QUEUE}", f"pgmq.a_{QUEUE}")
PHASES = ("clean", "held_xid", "rr_readers", "recovery")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The temporary cluster: autovacuum on with what managed services ship (RDS: naptime 15 s), the
# rest at PostgreSQL's defaults (scale factor 0.2, cost delay 2 ms, cost limit 200), which our
# tables override per table where the migrations say so. Memory and durability as this server.
TEMP_SETTINGS = {
    "autovacuum": "on", "autovacuum_naptime": "15s", "track_counts": "on",
    "max_connections": "50", "listen_addresses": "127.0.0.1",
}


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create ``sw_pressure_<random>`` with the engine installed; drop it afterwards."""
    name = f"sw_pressure_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = make_conninfo(admin_url, dbname=name)
    try:
        install(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(name)))


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def temp_cluster(admin_url: str) -> Iterator[str]:
    """Run a temporary PostgreSQL 15 cluster (initdb, pg_ctl) on a free port; remove it after.

    Memory and durability settings are copied from the server of ``admin_url`` so that the two
    configurations differ in autovacuum only. initdb refuses to run as root, so the cluster
    belongs to the ``postgres`` system user when the bench runs as root.
    """
    with psycopg.connect(admin_url) as conn:
        copied: dict[str, str] = dict(conn.execute(
            "select name, current_setting(name) from pg_settings where name in"
            " ('shared_buffers', 'fsync', 'synchronous_commit', 'max_wal_size', 'work_mem')"
        ).fetchall())
    settings = {**copied, **TEMP_SETTINGS}
    datadir = Path(tempfile.mkdtemp(prefix="sw_pressure_pg_"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    superuser = conninfo_to_dict(admin_url).get("user") or "postgres"
    subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(datadir), "-U", str(superuser),
                    "--auth=trust", "-E", "UTF8", "--no-sync"], check=True,
                   stdout=subprocess.DEVNULL)
    opts = " ".join(f"-c {k}={v}" for k, v in settings.items()) + f" -p {port} -k {datadir}"
    subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-w", "-l",
                    str(datadir / "log"), "-o", opts, "start"], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        yield f"postgresql://{superuser}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-w", "-m", "fast",
                        "stop"], check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(datadir, ignore_errors=True)
        with socket.socket() as s:
            listening = s.connect_ex(("127.0.0.1", port)) == 0
        if listening or datadir.exists():
            raise RuntimeError(f"temporary cluster on port {port} ({datadir}) was not removed")
        print(f"temporary cluster on port {port} stopped and removed", flush=True)


def producer(url: str, rate: int, started: Any, stop: Any) -> None:
    """Start ``rate`` runs a second, in one ``start_flows`` call per 100 ms tick."""
    per_tick = max(1, rate // 10)
    inputs = [Jsonb({"n": i}) for i in range(per_tick)]
    with psycopg.connect(url, autocommit=True) as conn:
        next_tick = time.monotonic()
        while not stop.is_set():
            conn.execute("select count(*) from workflow.start_flows('pressure', %s::jsonb[])",
                         [inputs])
            started.value += per_tick
            next_tick += 0.1
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()  # behind: do not burst to catch up


def worker(url: str, batch: int, completed: Any, stop: Any, out: str) -> None:
    """Claim and complete batches until told to stop; write (time, claim ms, tasks) to ``out``."""
    claim = "select task_id, attempt from workflow.claim_tasks(%s, %s, 'pressure-worker')"
    complete = ("select count(*) filter (where accepted) from workflow.complete_tasks("
                "%s::bigint[], %s::integer[], %s::jsonb[])")
    samples: list[tuple[float, float, int]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            t0 = time.perf_counter()
            rows = conn.execute(claim, [QUEUE, batch]).fetchall()
            ms = (time.perf_counter() - t0) * 1000
            if not rows:
                time.sleep(0.01)
                continue
            samples.append((time.time(), ms, len(rows)))
            row = conn.execute(complete, [[r[0] for r in rows], [r[1] for r in rows],
                                          ["1"] * len(rows)]).fetchone()
            with completed.get_lock():
                completed.value += int(row[0]) if row else 0
    Path(out).write_text(json.dumps(samples))


def housekeeper(url: str, keep: str, vacuum: bool, vacuums: Any, stop: Any) -> None:
    """``maintain()`` every 5 s, and ``prune`` until a call deletes nothing, as deployments do.

    With ``vacuum``, also VACUUM the tables that ``maintain()`` names in its "vacuum" list, as a
    worker does (``Worker(vacuum=True)``).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute("select workflow.maintain()").fetchone()
            for table in (row[0].get("vacuum", []) if row and vacuum else []):
                conn.execute(sql.SQL("vacuum {}").format(sql.SQL(table)))
                vacuums.value += 1
            while not stop.is_set():
                row = conn.execute("select runs_deleted from workflow.prune(%s::interval, 1000)",
                                   [keep]).fetchone()
                if not row or int(row[0]) == 0:
                    break
            stop.wait(5.0)


def reader(url: str, stop: Any) -> None:
    """One REPEATABLE READ transaction for the whole phase, scanning the hot tables."""
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        while not stop.is_set():
            for t in TABLES:
                conn.execute(sql.SQL("select count(*) from {}").format(
                    sql.SQL(".").join(sql.Identifier(p) for p in t.split("."))))
            stop.wait(0.5)
        conn.rollback()


def sample(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The hot tables' size and counters, the active backends' wait events, the oldest xmin."""
    rows = conn.execute(
        "select c.oid::regclass::text, pg_total_relation_size(c.oid), coalesce(s.n_live_tup, 0),"
        " coalesce(s.n_dead_tup, 0), coalesce(s.n_tup_upd, 0), coalesce(s.n_tup_hot_upd, 0),"
        " coalesce(s.autovacuum_count, 0) + coalesce(s.vacuum_count, 0)"
        " from pg_class c left join pg_stat_user_tables s on s.relid = c.oid"
        " where c.oid = any(%s::regclass[])", [list(TABLES)]).fetchall()
    tables = {r[0]: {"bytes": r[1], "live": r[2], "dead": r[3], "upd": r[4], "hot_upd": r[5],
                     "vacuums": r[6]} for r in rows}
    waits = conn.execute(
        "select coalesce(wait_event_type || ':' || wait_event, 'CPU') from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid() and state = 'active'"
    ).fetchall()
    xmin = conn.execute("select coalesce(max(greatest(age(backend_xmin), age(backend_xid))), 0)"
                        " from pg_stat_activity"
                        " where datname = current_database() and pid <> pg_backend_pid()").fetchone()
    return {"t": time.time(), "tables": tables, "waits": [w[0] for w in waits],
            "xmin_age": int(xmin[0]) if xmin else 0}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values`` by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run_target(admin_url: str, label: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the four phases against one server; return the per-phase figures."""
    durations = {"clean": args.clean, "held_xid": args.held, "rr_readers": args.readers_for,
                 "recovery": args.recovery}
    ctx = mp.get_context("spawn")
    with throwaway_database(admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select workflow.register_flow(%s)", [Jsonb({"slug": "pressure", "steps": [
                {"slug": "only", "queue": QUEUE, "execution": "distributed"}]})])
            if args.fillfactor:
                for t in ("workflow.runs", "workflow.step_states", "workflow.tasks"):
                    conn.execute(sql.SQL("alter table {} set (fillfactor = {})").format(
                        sql.SQL(t), sql.Literal(args.fillfactor)))
            server: dict[str, str] = dict(conn.execute(
                "select name, current_setting(name) from pg_settings where name in"
                " ('autovacuum', 'autovacuum_naptime', 'autovacuum_vacuum_cost_delay',"
                " 'autovacuum_vacuum_scale_factor', 'shared_buffers', 'synchronous_commit',"
                " 'fsync', 'server_version')").fetchall())
            reloptions: dict[str, str] = dict(conn.execute(
                "select c.oid::regclass::text, coalesce(array_to_string(c.reloptions, ','), '')"
                " from pg_class c where c.oid = any(%s::regclass[])", [list(TABLES)]).fetchall())
        stop, hk_stop = ctx.Event(), ctx.Event()
        started, completed, vacuums = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Value("q", 0)
        claims_file = str(Path(tmp) / "claims.json")
        procs = [ctx.Process(target=producer, args=(url, args.rate, started, stop)),
                 ctx.Process(target=worker, args=(url, args.batch, completed, stop, claims_file)),
                 ctx.Process(target=housekeeper, args=(url, args.keep, args.vacuum, vacuums,
                                                       hk_stop))]
        for p in procs:
            p.start()
        samples: list[dict[str, Any]] = []
        bounds: dict[str, dict[str, Any]] = {}
        with psycopg.connect(url, autocommit=True) as mon:
            time.sleep(args.warmup)
            for phase in PHASES:
                holder: psycopg.Connection[Any] | None = None
                readers: list[Any] = []
                reader_stop = ctx.Event()
                if phase == "held_xid":
                    holder = psycopg.connect(url)
                    holder.execute("select txid_current()")  # idle in transaction from here
                if phase == "rr_readers":
                    readers = [ctx.Process(target=reader, args=(url, reader_stop))
                               for _ in range(4)]
                    for r in readers:
                        r.start()
                begin = {"t": time.time(), "completed": completed.value, "started": started.value,
                         "load": os.getloadavg()}
                print(f"[{label}] phase {phase} ({durations[phase]:g} s), load average"
                      f" {begin['load'][0]:.2f}", flush=True)
                end_at = time.monotonic() + durations[phase]
                while time.monotonic() < end_at:
                    s = sample(mon)
                    s["phase"] = phase
                    samples.append(s)
                    time.sleep(max(0.0, min(1.0, end_at - time.monotonic())))
                bounds[phase] = {"begin": begin, "end": {
                    "t": time.time(), "completed": completed.value, "started": started.value,
                    "sample": sample(mon)}}
                if holder is not None:
                    holder.close()
                reader_stop.set()
                for r in readers:
                    r.join(30)
        stop.set()
        hk_stop.set()
        for p in procs:
            p.join(60)
        claims = json.loads(Path(claims_file).read_text())
    result = summarise(label, server, reloptions, samples, bounds, claims, durations, args)
    result["vacuums_by_housekeeper"] = vacuums.value
    print(f"VACUUMs run on maintain()'s advice: {vacuums.value}"
          + ("" if args.vacuum else " (--vacuum not given)"))
    return result


def summarise(label: str, server: dict[str, str], reloptions: dict[str, str],
              samples: list[dict[str, Any]], bounds: dict[str, dict[str, Any]],
              claims: list[list[float]], durations: dict[str, float],
              args: argparse.Namespace) -> dict[str, Any]:
    """Turn the samples into per-phase figures (and print them)."""
    phases: dict[str, Any] = {}
    for phase in PHASES:
        b, e = bounds[phase]["begin"], bounds[phase]["end"]
        secs = e["t"] - b["t"]
        ms = [c[1] for c in claims if b["t"] <= c[0] < e["t"]]
        ss = [s for s in samples if s["phase"] == phase]
        waits = Counter(w for s in ss for w in s["waits"])
        total_waits = sum(waits.values()) or 1
        end_tables = e["sample"]["tables"]
        phases[phase] = {
            "seconds": round(secs, 1), "load_average": round(b["load"][0], 2),
            "started_per_s": round((e["started"] - b["started"]) / secs),
            "completions_per_s": round((e["completed"] - b["completed"]) / secs),
            "claims": len(ms), "claim_p50_ms": round(percentile(ms, 50), 2),
            "claim_p95_ms": round(percentile(ms, 95), 2),
            "claim_p99_ms": round(percentile(ms, 99), 2),
            "max_xmin_age": max((s["xmin_age"] for s in ss), default=0),
            "tables_at_end": end_tables,
            "max_dead": {t: max((s["tables"][t]["dead"] for s in ss), default=0) for t in TABLES},
            "max_bytes": {t: max((s["tables"][t]["bytes"] for s in ss), default=0)
                          for t in TABLES},
            "top_waits": [(w, round(100 * n / total_waits)) for w, n in waits.most_common(4)],
            "hot_updates": {t: {
                "upd": end_tables[t]["upd"] - (ss[0]["tables"][t]["upd"] if ss else 0),
                "hot_upd": end_tables[t]["hot_upd"] - (ss[0]["tables"][t]["hot_upd"] if ss else 0),
            } for t in TABLES},
        }
    first = samples[0]["tables"] if samples else {}
    last = bounds["recovery"]["end"]["sample"]["tables"]
    hot = {t: {"upd": last[t]["upd"] - first.get(t, last[t])["upd"],
               "hot_upd": last[t]["hot_upd"] - first.get(t, last[t])["hot_upd"]} for t in TABLES}
    result = {"label": label, "server": server, "reloptions": reloptions, "phases": phases,
              "hot_updates": hot, "rate": args.rate, "batch": args.batch, "keep": args.keep,
              "durations": durations, "cpus": os.cpu_count()}
    print_target(result)
    return result


def print_target(r: dict[str, Any]) -> None:
    """Print one target's figures as plain tables."""
    s = r["server"]
    print(f"\n== {r['label']}: PostgreSQL {s.get('server_version')}, autovacuum {s.get('autovacuum')}"
          f" (naptime {s.get('autovacuum_naptime')}), {r['rate']} runs/s offered, batch"
          f" {r['batch']}, prune keep {r['keep']}, {r['cpus']} cores")
    print(f"{'phase':11} {'s':>5} {'load':>5} {'done/s':>7} {'p50':>6} {'p95':>6} {'p99':>7}"
          f" {'xmin age':>9}  top waits")
    for name, p in r["phases"].items():
        waits = ", ".join(f"{w} {pct}%" for w, pct in p["top_waits"][:3])
        print(f"{name:11} {p['seconds']:5.0f} {p['load_average']:5.2f}"
              f" {p['completions_per_s']:7d} {p['claim_p50_ms']:6.2f} {p['claim_p95_ms']:6.2f}"
              f" {p['claim_p99_ms']:7.2f} {p['max_xmin_age']:9d}  {waits}")
    print(f"{'table':22} " + " ".join(f"{n[:10]:>17}" for n in PHASES) + "   (dead rows / MiB at"
          " phase end; HOT/updates over the run)")
    for t in TABLES:
        cells = []
        for p in r["phases"].values():
            e = p["tables_at_end"][t]
            cells.append(f"{e['dead']:>8,} {e['bytes'] / 2**20:7.1f}M")
        h = r["hot_updates"][t]
        print(f"{t:22} " + " ".join(f"{c:>17}" for c in cells)
              + f"   HOT {h['hot_upd']:,}/{h['upd']:,}")
    print("HOT updates per phase (%): " + "; ".join(
        f"{name} " + ", ".join(
            f"{t.split('.')[1]} {100 * h['hot_upd'] // h['upd']}"
            for t, h in p["hot_updates"].items() if h["upd"])
        for name, p in r["phases"].items()))


def markdown(results: list[dict[str, Any]]) -> str:
    """The figures as one Markdown table per target (for docs/operations.md)."""
    out = []
    for r in results:
        s = r["server"]
        out.append(f"**{r['label']}** (autovacuum {s.get('autovacuum')}, naptime"
                   f" {s.get('autovacuum_naptime')}; {r['rate']} runs/s offered)\n")
        out.append("| phase | s | load avg | completions/s | claim p50 / p95 / p99 ms |"
                   " dead rows runs / step_states / tasks / queue | MiB runs / step_states /"
                   " tasks / events / queue | top waits |")
        out.append("|---|---|---|---|---|---|---|---|")
        q = f"pgmq.q_{QUEUE}"
        for name, p in r["phases"].items():
            e = p["tables_at_end"]
            dead = " / ".join(f"{e[t]['dead']:,}" for t in
                              ("workflow.runs", "workflow.step_states", "workflow.tasks", q))
            mib = " / ".join(f"{e[t]['bytes'] / 2**20:.1f}" for t in
                             ("workflow.runs", "workflow.step_states", "workflow.tasks",
                              "workflow.events", q))
            waits = ", ".join(f"{w} {pct}%" for w, pct in p["top_waits"][:2])
            out.append(f"| {name} | {p['seconds']:.0f} | {p['load_average']:.2f} |"
                       f" {p['completions_per_s']} | {p['claim_p50_ms']:.1f} /"
                       f" {p['claim_p95_ms']:.1f} / {p['claim_p99_ms']:.1f} | {dead} | {mib} |"
                       f" {waits} |")
        hot = ", ".join(f"{t.split('.')[1]} {h['hot_upd']:,}/{h['upd']:,}"
                        for t, h in r["hot_updates"].items() if h["upd"])
        out.append(f"\nHOT updates / updates over the run: {hot}\n")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pressure bench on the chosen targets and print/write its figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres"),
        help="admin connection that may create databases")
    p.add_argument("--target", choices=("server", "temp", "both", "all"), default="all",
                   help="server: this server; temp: a temporary cluster with autovacuum on; both;"
                   " all (the default): both, and this server again with VACUUM on maintain()'s"
                   " advice")
    p.add_argument("--rate", type=int, default=500, help="runs started per second (default 500)")
    p.add_argument("--batch", type=int, default=50, help="tasks per claim (default 50)")
    p.add_argument("--keep", default="60 seconds", help="prune runs finished longer ago")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds before the first phase")
    p.add_argument("--clean", type=float, default=60.0, help="clean phase, seconds")
    p.add_argument("--held", type=float, default=120.0, help="held-xid phase, seconds")
    p.add_argument("--readers-for", type=float, default=60.0, help="RR readers phase, seconds")
    p.add_argument("--recovery", type=float, default=120.0, help="recovery phase, seconds")
    p.add_argument("--vacuum", action="store_true",
                   help="the housekeeper also VACUUMs what maintain() advises")
    p.add_argument("--fillfactor", type=int, default=None,
                   help="try another fillfactor on runs, step_states and tasks (an experiment)")
    p.add_argument("--quick", action="store_true", help="short phases (15 s each, 5 s warm-up)")
    p.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    p.add_argument("--output", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.clean, args.held, args.readers_for, args.recovery = 5, 15, 15, 15, 15

    results = []
    if args.target in ("both", "all") or (args.target == "server" and not args.vacuum):
        results.append(run_target(args.database_url, "this server",
                                  argparse.Namespace(**{**vars(args), "vacuum": False})))
    if args.target == "all" or (args.target == "server" and args.vacuum):
        results.append(run_target(args.database_url, "this server, VACUUM on maintain()'s advice",
                                  argparse.Namespace(**{**vars(args), "vacuum": True})))
    if args.target in ("temp", "both", "all"):
        with temp_cluster(args.database_url) as temp_url:
            results.append(run_target(temp_url, "temporary cluster", args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    if args.markdown:
        print("\n" + markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
