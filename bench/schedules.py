"""Benchmark schedule firing's cost to an idle worker: claims per second with 0 and 1,000 schedules.

Why: schedule ticks (and ``start_at`` runs) are fired by the engine's own sweep, which
``claim_tasks`` runs at most once a second per database; so every idle worker's claim loop pays
for firing, and the promise is that it pays nothing measurable for schedules that are not due.

What it does: two throwaway databases with the same flow (one distributed step on queue
``sched_idle``, no runs) and a registered worker; the second also has 1,000 schedules defined,
none due while the benchmark runs (yearly ticks, on 1 January at 1,000 different minutes). One
``Client`` per database, connected like a worker's, claims from the empty queue as the Worker
does (``claim_tasks(queue, 10, worker_id=...)``, sweep included) in a tight loop; each of the
``reps`` repetitions (3: medians of 3) alternates the two databases in slices of 0.25 s for a
fixed time each (2 s quick, 5 s full), so load from anything else on the machine falls on both
alike. Reported: claims/s of each and their ratio
(1,000 schedules / none), and the time of one forced sweep (``_sweep(now, force => true)``, what
the once-a-second claim pays) in each, median of 20.

Run alone: ``python bench/schedules.py --database-url URL [--quick]``; ``bench/run.py`` runs it
as one of its sections (``--no-schedules`` skips it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from singularity_workflow import Client

QUEUE = "sched_idle"
SCHEDULES = 1000
VARIANTS = ("none", "schedules")
SLICE_S = 0.25


def _prepare(url: str, schedules: int) -> None:
    """Register the flow and the worker, and define ``schedules`` yearly schedules."""
    flow = {"slug": "sched_bench", "steps": [{"slug": "only", "execution": "distributed",
                                              "queue": QUEUE}]}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select workflow.register_flow(%s)", [Jsonb(flow)])
        conn.execute(
            "select workflow.register_worker('bench-idle', heartbeat_timeout_seconds => 600)"
        )
        for i in range(schedules):
            # 1 January at minute i of the day: none is due unless the bench runs then.
            conn.execute(
                "select workflow.create_schedule(%s, 'sched_bench', %s)",
                [f"bench_{i:04d}", f"{i % 60} {i // 60} 1 1 *"],
            )


def _claims_per_second(client: Client, seconds: float) -> float:
    """Claim from the empty queue in a tight loop for ``seconds``; return claims/s."""
    n = 0
    end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        client.claim_tasks(QUEUE, 10, worker_id="bench-idle")
        n += 1
    return n / (time.perf_counter() - t0)


def _sweep_ms(url: str, times: int) -> float:
    """Median time (ms, client side) of a forced sweep, which fires nothing here."""
    out: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(times):
            t0 = time.perf_counter()
            conn.execute("select workflow._sweep(clock_timestamp(), true)")
            out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def run_section(admin_url: str, *, quick: bool, reps: int = 3) -> dict[str, Any]:
    """Measure both variants in throwaway databases; return the section of the report."""
    import run as sql_bench

    from singularity_workflow import install

    seconds = 2.0 if quick else 5.0
    with sql_bench.throwaway_database(admin_url, "sw_bench_sn") as none_db, \
            sql_bench.throwaway_database(admin_url, "sw_bench_ss") as sched_db:
        urls = {"none": make_conninfo(admin_url, dbname=none_db),
                "schedules": make_conninfo(admin_url, dbname=sched_db)}
        for v, url in urls.items():
            install(url)
            _prepare(url, SCHEDULES if v == "schedules" else 0)
        print(f"schedules: idle claim loop, 0 vs {SCHEDULES} schedules, {reps} x {seconds:g} s"
              " each ...", flush=True)
        clients = {v: Client(url) for v, url in urls.items()}
        try:
            rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for v in VARIANTS:
                _claims_per_second(clients[v], 0.3)  # warm the connection and the plans
            for _ in range(reps):
                # Each rep alternates the two in slices of 0.25 s, so a burst of load from
                # elsewhere on the machine falls on both alike.
                slices: dict[str, list[float]] = {v: [] for v in VARIANTS}
                for _ in range(int(seconds / SLICE_S)):
                    for v in VARIANTS:
                        slices[v].append(_claims_per_second(clients[v], SLICE_S))
                for v in VARIANTS:
                    rates[v].append(statistics.fmean(slices[v]))
        finally:
            for c in clients.values():
                c.close()
        sweeps = {v: _sweep_ms(url, 20) for v, url in urls.items()}
        with psycopg.connect(urls["schedules"]) as conn:
            fired = conn.execute("select count(*) from workflow.runs").fetchone()
    med = {v: statistics.median(rates[v]) for v in VARIANTS}
    return {
        "schedules": SCHEDULES,
        "seconds_per_rep": seconds,
        "reps": reps,
        "claims_per_s": {v: [round(r, 1) for r in rates[v]] for v in VARIANTS},
        "claims_per_s_median": {v: round(med[v], 1) for v in VARIANTS},
        "ratio": round(med["schedules"] / med["none"], 3),
        "forced_sweep_ms_median": {v: round(sweeps[v], 3) for v in VARIANTS},
        "runs_fired": fired[0] if fired else None,
    }


def print_section(sec: dict[str, Any]) -> None:
    """Print the table and the ratio."""
    print(f"\n== schedules: idle worker's claim loop (empty queue, sweep included),"
          f" medians of {sec['reps']} x {sec['seconds_per_rep']:g} s ==")
    print(f"{'variant':<16}{'claims/s':>10}{'sweep ms':>10}   reps")
    for v, label in (("none", "0 schedules"), ("schedules", f"{sec['schedules']} schedules")):
        reps = ", ".join(f"{r:.0f}" for r in sec["claims_per_s"][v])
        print(f"{label:<16}{sec['claims_per_s_median'][v]:>10.0f}"
              f"{sec['forced_sweep_ms_median'][v]:>10.3f}   {reps}")
    print(f"ratio (with / without schedules): {sec['ratio']:.3f}"
          f"; runs fired meanwhile: {sec['runs_fired']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the section alone and write build/bench/schedules.json."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    sec = run_section(args.database_url, quick=args.quick)
    print_section(sec)
    out = Path(__file__).resolve().parent.parent / "build" / "bench" / "schedules.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(sec, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
