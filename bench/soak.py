"""Soak: push many tasks through the engine with pruning on; compare throughput at start and end.

Why: a queue in PostgreSQL slows down as dead rows and finished runs pile up (bloat, longer
index scans, vacuum falling behind). With retention (``workflow.prune``) and the hot tables'
autovacuum settings, throughput at the end of a long run should be within 10% of the start.

What it does, in a throwaway database it creates and drops:

* flow ``soak``: a root map step over the run input (``--map`` elements) and a join step, so a
  run is ``--map + 1`` tasks, on one queue;
* a starter process keeps a backlog of ``--backlog`` started runs until ``--tasks`` tasks were
  started (``start_flow``, 10 per transaction);
* ``--clients`` driver processes loop ``claim_tasks(qty=--batch)`` and one ``complete_tasks`` per
  batch (constant output), as workers would without handler work;
* a pruner process loops ``workflow.prune(--keep, 1000)`` until a call deletes nothing, then
  sleeps a second: runs finished more than ``--keep`` ago leave with all their rows. On a server
  with autovacuum off it also VACUUMs the hot tables every 10 s (``--vacuum-every``), standing in
  for autovacuum: without either, deleted and updated rows are never reclaimed;
* a sampler records completed tasks every second and the size of the hot tables.

Reported: tasks/s over the second and the last 10% of the tasks (the first tenth is warm-up),
and per 10% slice, the loss
between them, the table sizes (runs, step_states, tasks, events and the queue, with indexes
and TOAST) at the start and the end, how many runs were pruned, and the settings used. Output:
a table on stdout and ``build/bench/soak.json``. ``--tasks`` scales the run down (the default
is the full million).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from singularity_workflow import install

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "build" / "bench" / "soak.json"
TABLES = ("workflow.runs", "workflow.step_states", "workflow.tasks", "workflow.events",
          "pgmq.q_soak", "pgmq.a_soak")


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create ``sw_soak_<random>`` with the engine installed; drop it afterwards."""
    name = f"sw_soak_{secrets.token_hex(4)}"
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


def starter(url: str, tasks: int, map_size: int, backlog: int, started: Any, stop: Any) -> None:
    """Keep ``backlog`` runs started (not yet finished) until ``tasks`` tasks were started."""
    per_run = map_size + 1
    runs_needed = -(-tasks // per_run)
    items = Jsonb(list(range(map_size)))
    with psycopg.connect(url, autocommit=True) as conn:
        done = 0
        while done < runs_needed and not stop.is_set():
            row = conn.execute("select count(*) from workflow.runs where status = 'started'"
                               ).fetchone()
            live = int(row[0]) if row else 0
            if live >= backlog:
                time.sleep(0.05)
                continue
            n = min(10, runs_needed - done, backlog - live)
            with conn.transaction():
                for _ in range(n):
                    conn.execute("select workflow.start_flow('soak', %s)", [items])
            done += n
            started.value = done * per_run


def driver(url: str, batch: int, completed: Any, stop: Any) -> None:
    """Claim and complete batches until told to stop."""
    claim = "select task_id, attempt from workflow.claim_tasks('soak', %s, 'soak')"
    complete = ("select count(*) filter (where accepted) from workflow.complete_tasks("
                "%s::bigint[], %s::integer[], %s::jsonb[])")
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            rows = conn.execute(claim, [batch]).fetchall()
            if not rows:
                time.sleep(0.005)
                continue
            row = conn.execute(complete, [[r[0] for r in rows], [r[1] for r in rows],
                                          ["1"] * len(rows)]).fetchone()
            with completed.get_lock():
                completed.value += int(row[0]) if row else 0


def pruner(url: str, keep: str, vacuum_every: float, pruned: Any, vacuums: Any,
           stop: Any) -> None:
    """Prune finished runs older than ``keep`` in batches of 1,000, one transaction each.

    With ``vacuum_every`` > 0 it also VACUUMs the hot tables that often: what autovacuum does on
    a server where it is on, for servers where it is off (it must then be done by someone).
    """
    next_vacuum = time.monotonic() + vacuum_every
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute("select runs_deleted from workflow.prune(%s::interval, 1000)",
                               [keep]).fetchone()
            n = int(row[0]) if row else 0
            pruned.value += n
            if vacuum_every > 0 and time.monotonic() >= next_vacuum:
                conn.execute("vacuum " + ", ".join(TABLES))
                vacuums.value += 1
                next_vacuum = time.monotonic() + vacuum_every
            if n == 0:
                stop.wait(1.0)


def table_sizes(url: str) -> dict[str, Any]:
    """Return each hot table's total size (heap, indexes, TOAST), live and dead rows.

    And how often autovacuum processed it (sizes in bytes).
    """
    out: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for t in TABLES:
            row = conn.execute(
                "select pg_total_relation_size(%s::regclass), coalesce(s.n_live_tup, 0),"
                " coalesce(s.n_dead_tup, 0), coalesce(s.autovacuum_count, 0)"
                " from (select 1) x left join pg_stat_user_tables s on s.relid = %s::regclass",
                [t, t]).fetchone()
            assert row is not None
            out[t] = {"bytes": int(row[0]), "live": int(row[1]), "dead": int(row[2]),
                      "autovacuums": int(row[3])}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and print/write its figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres"),
        help="admin connection that may create databases")
    p.add_argument("--tasks", type=int, default=1_000_000, help="tasks in all (default 1,000,000)")
    p.add_argument("--clients", type=int, default=2, help="driver processes (default 2)")
    p.add_argument("--batch", type=int, default=50, help="tasks per claim/complete (default 50)")
    p.add_argument("--map", type=int, default=99, help="map elements per run (default 99)")
    p.add_argument("--backlog", type=int, default=40, help="runs kept started (default 40)")
    p.add_argument("--keep", default="10 seconds", help="prune runs finished longer ago")
    p.add_argument("--vacuum-every", type=float, default=None,
                   help="seconds between VACUUMs of the hot tables by the pruner (default: 10 when"
                   " the server's autovacuum is off, else never; 0 = never)")
    p.add_argument("--tune-queue", action="store_true",
                   help="give the queue table the hot tables' autovacuum settings (scale factor"
                   " 0.02, no cost delay), which pgmq does not set on the tables it creates")
    p.add_argument("--output", type=Path, default=OUT)
    args = p.parse_args(argv)

    ctx = mp.get_context("spawn")
    with throwaway_database(args.database_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select workflow.register_flow(%s)", [Jsonb({"slug": "soak", "steps": [
                {"slug": "each", "type": "map", "queue": "soak"},
                {"slug": "join", "depends_on": ["each"], "queue": "soak"}]})])
            if args.tune_queue:
                conn.execute("alter table pgmq.q_soak set (autovacuum_vacuum_scale_factor = 0.02,"
                             " autovacuum_vacuum_cost_delay = 0)")
            autovacuum = conn.execute("show autovacuum").fetchone() == ("on",)
        vacuum_every = args.vacuum_every if args.vacuum_every is not None else (
            0.0 if autovacuum else 10.0)
        stop, prune_stop = ctx.Event(), ctx.Event()
        started, completed, pruned = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Value("q", 0)
        vacuums = ctx.Value("q", 0)
        procs = [ctx.Process(target=starter, args=(url, args.tasks, args.map, args.backlog,
                                                   started, stop))]
        procs += [ctx.Process(target=driver, args=(url, args.batch, completed, stop))
                  for _ in range(args.clients)]
        prune_proc = ctx.Process(target=pruner, args=(url, args.keep, vacuum_every, pruned,
                                                      vacuums, prune_stop))
        for proc in [*procs, prune_proc]:
            proc.start()
        t0 = time.monotonic()
        samples: list[tuple[float, int]] = [(0.0, 0)]
        sizes_start: dict[str, int] | None = None
        total = -(-args.tasks // (args.map + 1)) * (args.map + 1)
        try:
            while completed.value < total:
                time.sleep(1.0)
                samples.append((time.monotonic() - t0, completed.value))
                if sizes_start is None and completed.value >= total // 10:
                    sizes_start = table_sizes(url)
                if len(samples) > 30 and len(samples) % 30 == 1:
                    rate = (samples[-1][1] - samples[-31][1]) / (samples[-1][0] - samples[-31][0])
                    print(f"  {samples[-1][1]:>9,} tasks  {rate:8.0f} tasks/s (last 30 s)"
                          f"  pruned {pruned.value:,} runs", flush=True)
        finally:
            stop.set()
            for proc in procs:
                proc.join(30)
        sizes_end = table_sizes(url)
        prune_stop.set()
        prune_proc.join(30)

    def at(n: int) -> float:
        """Seconds at which ``n`` tasks had completed (interpolated between samples)."""
        for (ta, na), (tb, nb) in zip(samples, samples[1:], strict=False):
            if nb >= n:
                return ta + (tb - ta) * ((n - na) / (nb - na) if nb > na else 0)
        return samples[-1][0]

    slices = [round((total // 10) / (at(total * (i + 1) // 10) - at(total * i // 10)))
              for i in range(10)]
    # The first tenth includes the warm-up (processes starting, caches filling): the start is
    # the second tenth.
    start_rate, end_rate = slices[1], slices[-1]
    result: dict[str, Any] = {
        "tasks": total, "seconds": round(samples[-1][0], 1),
        "tasks_per_second_by_tenth": slices,
        "start_tasks_per_second": start_rate, "end_tasks_per_second": end_rate,
        "loss_percent": round(100 * (1 - end_rate / start_rate), 1),
        "runs_pruned": pruned.value, "server_autovacuum": autovacuum,
        "vacuum_every_seconds": vacuum_every, "vacuums": vacuums.value,
        "tables_at_10_percent": sizes_start,
        "tables_at_end": sizes_end,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k != "database_url"},
        "cpus": os.cpu_count(),
    }
    print(f"soak: {total:,} tasks in {result['seconds']} s; tasks/s by tenth: {slices}")
    print(f"start {start_rate} tasks/s, end {end_rate} tasks/s: loss {result['loss_percent']}%"
          f" (target < 10%); {pruned.value:,} runs pruned")
    print(f"server autovacuum {'on' if autovacuum else 'off'}; VACUUMs by the pruner:"
          f" {vacuums.value} (every {vacuum_every:g} s)")
    for t in TABLES:
        a = (sizes_start or {}).get(t, {"bytes": 0})
        e = sizes_end[t]
        print(f"  {t:24} {a['bytes'] / 2**20:8.1f} MiB at 10%  {e['bytes'] / 2**20:8.1f} MiB at"
              f" end ({e['live']:,} live, {e['dead']:,} dead rows, {e['autovacuums']} autovacuums)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
