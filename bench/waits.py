"""Benchmark wait steps: what 10,000 waiting runs cost an idle worker, and event -> next step.

Why: a wait step (``wait_for``) holds no task and no queue message while it waits, so the promise
is that waiting runs cost an idle worker nothing (no claims to make, nothing to poll), and that an
event starts the next step in the transaction that delivers it.

What it does, in two throwaway databases with the same flow (``hold``, a wait step with a one-day
``wait_timeout``, then ``next``, one distributed step on queue ``waits_q``) and a registered
worker: the second also has 10,000 runs, all waiting in ``hold``. One ``Client`` per database,
connected like a worker's, claims from ``waits_q`` as the Worker does (``claim_tasks(queue, 10,
worker_id=...)``, the once-a-second sweep included, which also looks for wait timeouts) in a tight
loop; each of the ``reps`` repetitions (3: medians of 3) alternates the two databases in slices of
0.25 s for a fixed time each (2 s quick, 5 s full), so load from anything else on the machine falls
on both alike. Reported: claims/s of each, their ratio (10,000 waiting / none), the tasks those
claims returned (must be 0), and the time of one forced sweep in each, median of 20.
Then event -> next step: for ``samples`` (100 quick, 300 full) of the waiting runs, one connection
sends the run's event (``send_event``, autocommit) and at once a second one claims from
``waits_q`` in a tight loop until it gets that run's ``next`` task; latency = from the start of
``send_event`` to the claim that returned the task (so it includes the event's commit and one
claim round trip, not a worker's LISTEN wake-up). p50 and p95.

Run: ``python bench/waits.py --database-url URL [--quick]``; writes build/bench/waits.json.
"""

from __future__ import annotations

import argparse
import json
import os
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

QUEUE = "waits_q"
WAITING = 10_000
VARIANTS = ("none", "waiting")
SLICE_S = 0.25
FLOW = {
    "slug": "waits_bench",
    "steps": [
        {"slug": "hold", "wait_for": "bench_event", "wait_timeout": 86400},
        {"slug": "next", "depends_on": ["hold"], "execution": "distributed", "queue": QUEUE},
    ],
}


def _prepare(url: str, waiting: int) -> list[str]:
    """Register the flow and the worker, start ``waiting`` runs; return their ids."""
    ids: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select workflow.register_flow(%s)", [Jsonb(FLOW)])
        conn.execute(
            "select workflow.register_worker('bench-idle', heartbeat_timeout_seconds => 600)"
        )
        for start in range(0, waiting, 1000):
            n = min(1000, waiting - start)
            rows = conn.execute(
                "select run_id from workflow.start_flows('waits_bench', %s::jsonb[])",
                [[Jsonb({"n": start + i}) for i in range(n)]],
            ).fetchall()
            ids.extend(str(r[0]) for r in rows)
        conn.execute("analyze")
        waits = conn.execute("select count(*) from workflow.event_waits").fetchone()
        assert waits == (waiting,), waits
    return ids


def _claims_per_second(client: Client, seconds: float) -> tuple[float, int]:
    """Claim from the empty queue in a tight loop for ``seconds``; return claims/s and tasks."""
    n = got = 0
    end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        got += len(client.claim_tasks(QUEUE, 10, worker_id="bench-idle"))
        n += 1
    return n / (time.perf_counter() - t0), got


def _sweep_ms(url: str, times: int) -> float:
    """Median time (ms, client side) of a forced sweep (it times out no wait here)."""
    out: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(times):
            t0 = time.perf_counter()
            conn.execute("select workflow._sweep(clock_timestamp(), true)")
            out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def _event_latency(url: str, run_ids: Sequence[str]) -> list[float]:
    """Send each run's event and claim its next task at once; return the latencies in ms."""
    out: list[float] = []
    with psycopg.connect(url, autocommit=True) as sender, \
            psycopg.connect(url, autocommit=True) as claimer:
        for run_id in run_ids:
            t0 = time.perf_counter()
            sender.execute("select workflow.send_event('bench_event', %s, '1')", [run_id])
            deadline = t0 + 10
            while True:
                rows = claimer.execute(
                    "select task_id, attempt, run_id from workflow.claim_tasks(%s, 10,"
                    " worker_id => 'bench-idle')", [QUEUE],
                ).fetchall()
                if any(str(r[2]) == run_id for r in rows):
                    out.append((time.perf_counter() - t0) * 1000)
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"no next task for run {run_id} within 10 s")
            claimer.execute(
                "select workflow.complete_tasks(%s, %s, %s::jsonb[])",
                [[r[0] for r in rows], [r[1] for r in rows], [Jsonb(None) for _ in rows]],
            )
    return out


def run_section(admin_url: str, *, quick: bool, reps: int = 3) -> dict[str, Any]:
    """Measure both variants in throwaway databases; return the section of the report."""
    import run as sql_bench

    from singularity_workflow import install

    seconds = 2.0 if quick else 5.0
    samples = 100 if quick else 300
    with sql_bench.throwaway_database(admin_url, "sw_bench_wn") as none_db, \
            sql_bench.throwaway_database(admin_url, "sw_bench_ww") as wait_db:
        urls = {"none": make_conninfo(admin_url, dbname=none_db),
                "waiting": make_conninfo(admin_url, dbname=wait_db)}
        ids: dict[str, list[str]] = {}
        for v, url in urls.items():
            install(url)
            ids[v] = _prepare(url, WAITING if v == "waiting" else 0)
        print(f"waits: idle claim loop, 0 vs {WAITING} waiting runs, {reps} x {seconds:g} s"
              " each ...", flush=True)
        clients = {v: Client(url) for v, url in urls.items()}
        tasks = {v: 0 for v in VARIANTS}
        try:
            rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for v in VARIANTS:
                _claims_per_second(clients[v], 0.3)  # warm the connection and the plans
            for _ in range(reps):
                slices: dict[str, list[float]] = {v: [] for v in VARIANTS}
                for _ in range(int(seconds / SLICE_S)):
                    for v in VARIANTS:
                        rate, got = _claims_per_second(clients[v], SLICE_S)
                        slices[v].append(rate)
                        tasks[v] += got
                for v in VARIANTS:
                    rates[v].append(statistics.fmean(slices[v]))
        finally:
            for c in clients.values():
                c.close()
        sweeps = {v: _sweep_ms(url, 20) for v, url in urls.items()}
        print(f"waits: event -> next step latency, {samples} events ...", flush=True)
        latencies = _event_latency(urls["waiting"], ids["waiting"][:samples])
    med = {v: statistics.median(rates[v]) for v in VARIANTS}
    ordered = sorted(latencies)
    return {
        "waiting_runs": WAITING,
        "seconds_per_rep": seconds,
        "reps": reps,
        "claims_per_s": {v: [round(r, 1) for r in rates[v]] for v in VARIANTS},
        "claims_per_s_median": {v: round(med[v], 1) for v in VARIANTS},
        "ratio": round(med["waiting"] / med["none"], 3),
        "tasks_claimed_while_idle": tasks,
        "forced_sweep_ms_median": {v: round(sweeps[v], 3) for v in VARIANTS},
        "event_to_next_step_ms": {
            "samples": len(ordered),
            "p50": round(statistics.median(ordered), 3),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        },
        "load_average": list(os.getloadavg()),
        "cpus": os.cpu_count(),
    }


def print_section(sec: dict[str, Any]) -> None:
    """Print the table, the ratio and the latency."""
    print(f"\n== waits: idle worker's claim loop (empty queue, sweep included),"
          f" medians of {sec['reps']} x {sec['seconds_per_rep']:g} s ==")
    print(f"{'variant':<20}{'claims/s':>10}{'sweep ms':>10}{'tasks':>7}   reps")
    for v, label in (("none", "0 waiting runs"), ("waiting", f"{sec['waiting_runs']} waiting")):
        reps = ", ".join(f"{r:.0f}" for r in sec["claims_per_s"][v])
        print(f"{label:<20}{sec['claims_per_s_median'][v]:>10.0f}"
              f"{sec['forced_sweep_ms_median'][v]:>10.3f}"
              f"{sec['tasks_claimed_while_idle'][v]:>7}   {reps}")
    lat = sec["event_to_next_step_ms"]
    print(f"ratio (waiting / none): {sec['ratio']:.3f}")
    print(f"event -> next step claimed: p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms"
          f" ({lat['samples']} events); load average {sec['load_average']}, {sec['cpus']} CPUs")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the section and write build/bench/waits.json."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    sec = run_section(args.database_url, quick=args.quick)
    print_section(sec)
    out = Path(__file__).resolve().parent.parent / "build" / "bench" / "waits.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(sec, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
