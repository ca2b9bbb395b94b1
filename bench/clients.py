"""Benchmark the two Python clients side by side: W1-W4 through ``Client`` and ``AsyncClient``.

Why: ``AsyncClient`` is generated from ``Client``; each of its methods replays the sync body
with a recording client and then awaits the recorded operations (``_aio``). That replay, and
psycopg's async connection, must not cost anything that shows on the engine's workloads. This
drives the same workloads through both clients, in one run, alternating, so the machine's load
falls on both alike.

Workloads (the issues' W1-W4; sizes as ``bench/worker_e2e.py``'s): W1 = drain 2,000
single-step runs, W2 = 200 three-step chains, W3 = 100 diamonds 1 -> 10 -> 1, W4 = hop latency
along 20-step chains run one at a time on an otherwise idle queue. Each client is driven as a
worker's loop drives its connection: one connection, ``claim_tasks(queue, 10)`` then one
``complete_tasks`` of what it got, until every task of the workload is done (no handler work:
what is left is the client and the engine). Before a drain the runs are started through the
same client (``start_flows``, 100 per call; the start rate is reported too) and
``maintain()`` refreshes the statistics. W4: a chain is started, then the loop claims in a tight
loop; a hop is the time from the return of step n's ``complete_tasks`` to the return of the
claim that hands out step n+1 (client clocks: the client and engine round trips of one hop,
no wake-up delay, since the loop never sleeps).

Each of ``--reps`` repetitions (3: medians of 3) runs every workload through both clients,
alternating in slices (a drain in 4 quarters, W4 one chain at a time), the order of the two
swapped every repetition, in one throwaway database (tables emptied before each workload).
Reported: medians per client, the ratio async / sync (throughput) and sync / async (hop, so that
above 1 is always "async is faster"), and the 1-minute load average at the start and end of each
measurement.

Run: ``python bench/clients.py [--database-url URL] [--quick] [--reps N]``; output on stdout and
``build/bench/clients.json``. ``make bench`` runs it too (``--no-clients`` there skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import machine_facts, server_facts, throwaway_database  # noqa: E402
from worker_e2e import QUEUE, flow_shapes, load_avg, reset  # noqa: E402

from singularity_workflow import AsyncClient, Client, install  # noqa: E402

BATCH = 10  # what one claim of a worker with concurrency 10 asks for
START_CHUNK = 100  # runs per start_flows call
SIZES = {"W1": 2000, "W2": 200, "W3": 100}
QUICK_SIZES = {"W1": 400, "W2": 40, "W3": 20}
FLOW_OF = {"W1": "e2e_single", "W2": "e2e_chain", "W3": "e2e_diamond", "W4": "e2e_hop"}
HOP_STEPS = 20
SLICES = 4
OUT = Path(__file__).resolve().parent.parent / "build" / "bench" / "clients.json"


def flow_json(slug: str, steps: list[tuple[str, list[str]]], queue: str = QUEUE) -> dict[str, Any]:
    """Return the register_flow JSON of a benchmark flow: distributed steps on one queue."""
    return {"slug": slug, "steps": [
        {"slug": name, "depends_on": deps, "execution": "distributed", "queue": queue}
        for name, deps in steps]}


def steps_of(slug: str) -> int:
    """How many tasks one run of a benchmark flow has."""
    return len(flow_shapes()[slug])


# --- the sync drive ------------------------------------------------------------------------------


def drain_sync(client: Client, slug: str, runs: int, *, queue: str = QUEUE,
               worker_id: str | None = None) -> dict[str, float]:
    """Start ``runs`` runs, then claim and complete until all their tasks are done."""
    t0 = time.perf_counter()
    for i in range(0, runs, START_CHUNK):
        client.start_flows(slug, [{}] * min(START_CHUNK, runs - i))
    started = time.perf_counter() - t0
    client.maintain()
    total, done, idle = runs * steps_of_flow(client, slug), 0, 0
    t0 = time.perf_counter()
    while done < total:
        tasks = client.claim_tasks(queue, BATCH, worker_id=worker_id)
        if not tasks:
            idle += 1
            if idle > 100_000:
                raise RuntimeError(f"{slug}: only {done}/{total} tasks claimable")
            continue
        client.complete_tasks([(t.task_id, t.attempt, None) for t in tasks])
        done += len(tasks)
    wall = time.perf_counter() - t0
    return {"start_runs_per_s": runs / started, "steps_per_s": total / wall}


def hop_sync(client: Client, slug: str, chains: int, *, queue: str = QUEUE,
             worker_id: str | None = None) -> list[float]:
    """Run ``chains`` chains one at a time; return every hop's latency (ms)."""
    hops: list[float] = []
    steps = steps_of_flow(client, slug)
    for _ in range(chains):
        client.start_flows(slug, [{}])
        done, last = 0, None
        while done < steps:
            tasks = client.claim_tasks(queue, BATCH, worker_id=worker_id)
            if not tasks:
                continue
            if last is not None:
                hops.append((time.perf_counter() - last) * 1000)
            client.complete_tasks([(t.task_id, t.attempt, None) for t in tasks])
            last = time.perf_counter()
            done += len(tasks)
    return hops


def steps_of_flow(client: Client | None, slug: str) -> int:
    """Tasks per run of ``slug`` (the benchmark flows are known by name; others are asked)."""
    shapes = flow_shapes()
    if slug in shapes:
        return len(shapes[slug])
    assert client is not None
    return len(client.get_flow(slug)["steps"])


# --- the async drive (the same loop, awaited) ----------------------------------------------------


async def drain_async(client: AsyncClient, slug: str, runs: int) -> dict[str, float]:
    """Drain as :func:`drain_sync` does, awaited."""
    t0 = time.perf_counter()
    for i in range(0, runs, START_CHUNK):
        await client.start_flows(slug, [{}] * min(START_CHUNK, runs - i))
    started = time.perf_counter() - t0
    await client.maintain()
    total, done, idle = runs * steps_of(slug), 0, 0
    t0 = time.perf_counter()
    while done < total:
        tasks = await client.claim_tasks(QUEUE, BATCH)
        if not tasks:
            idle += 1
            if idle > 100_000:
                raise RuntimeError(f"{slug}: only {done}/{total} tasks claimable")
            continue
        await client.complete_tasks([(t.task_id, t.attempt, None) for t in tasks])
        done += len(tasks)
    wall = time.perf_counter() - t0
    return {"start_runs_per_s": runs / started, "steps_per_s": total / wall}


async def hop_async(client: AsyncClient, slug: str, chains: int) -> list[float]:
    """Run chains as :func:`hop_sync` does, awaited."""
    hops: list[float] = []
    steps = steps_of(slug)
    for _ in range(chains):
        await client.start_flows(slug, [{}])
        done, last = 0, None
        while done < steps:
            tasks = await client.claim_tasks(QUEUE, BATCH)
            if not tasks:
                continue
            if last is not None:
                hops.append((time.perf_counter() - last) * 1000)
            await client.complete_tasks([(t.task_id, t.attempt, None) for t in tasks])
            last = time.perf_counter()
            done += len(tasks)
    return hops


# --- the section -----------------------------------------------------------------------------


def measured(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run ``fn`` with the load average before and after."""
    before = load_avg()
    value = fn()
    return {"value": value, "load": [before, load_avg()]}


def pct(values: Sequence[float], q: float) -> float:
    """Return the q-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_section(admin_url: str, *, quick: bool, reps: int) -> dict[str, Any]:
    """Measure W1-W4 through both clients, ``reps`` times, in one throwaway database."""
    sizes = QUICK_SIZES if quick else SIZES
    chains = 3 if quick else 10
    kinds = ("sync", "async")
    raw: dict[str, dict[str, list[Any]]] = {k: {w: [] for w in (*sizes, "W4")} for k in kinds}
    loads: list[list[float]] = []
    with throwaway_database(admin_url, "sw_bench_clients") as name:
        url = make_conninfo(admin_url, dbname=name)
        install(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for slug, steps in flow_shapes().items():
                conn.execute("select workflow.register_flow(%s)", [Jsonb(flow_json(slug, steps))])
        server = server_facts(url)
        with psycopg.connect(url, autocommit=True) as admin, Client(url) as sync_client:
            loop = asyncio.new_event_loop()
            aio = AsyncClient(url)
            try:
                # Warm both connections and the plans.
                drain_sync(sync_client, FLOW_OF["W1"], 50)
                loop.run_until_complete(drain_async(aio, FLOW_OF["W1"], 50))
                for rep in range(reps):
                    order = kinds if rep % 2 == 0 else kinds[::-1]
                    # Each workload alternates the two clients in SLICES slices (a drain of
                    # runs/SLICES, one hop chain), so a burst of load from elsewhere on the
                    # machine falls on both alike.
                    for w, runs in sizes.items():
                        reset(admin)
                        part = runs // SLICES
                        busy = {k: [0.0, 0.0] for k in kinds}  # drain s, start s
                        for _ in range(SLICES):
                            for kind in order:
                                slug = FLOW_OF[w]
                                if kind == "sync":
                                    m = measured(
                                        lambda s=slug, n=part: drain_sync(sync_client, s, n))
                                else:
                                    m = measured(lambda s=slug, n=part: loop.run_until_complete(
                                        drain_async(aio, s, n)))
                                steps = part * steps_of(FLOW_OF[w])
                                busy[kind][0] += steps / m["value"]["steps_per_s"]
                                busy[kind][1] += part / m["value"]["start_runs_per_s"]
                                loads.append(m["load"])
                        for kind in kinds:
                            raw[kind][w].append({
                                "steps_per_s": SLICES * part * steps_of(FLOW_OF[w]) / busy[kind][0],
                                "start_runs_per_s": SLICES * part / busy[kind][1]})
                    reset(admin)
                    hops: dict[str, list[float]] = {k: [] for k in kinds}
                    for _ in range(chains):
                        for kind in order:
                            if kind == "sync":
                                m = measured(lambda: hop_sync(sync_client, FLOW_OF["W4"], 1))
                            else:
                                m = measured(lambda: loop.run_until_complete(
                                    hop_async(aio, FLOW_OF["W4"], 1)))
                            hops[kind] += m["value"]
                            loads.append(m["load"])
                    for kind in kinds:
                        raw[kind]["W4"].append(hops[kind])
            finally:
                loop.run_until_complete(aio.close())
                loop.close()
    med: dict[str, dict[str, Any]] = {k: {} for k in kinds}
    for kind in kinds:
        for w in sizes:
            med[kind][w] = {
                "steps_per_s": round(statistics.median(r["steps_per_s"] for r in raw[kind][w]), 1),
                "start_runs_per_s": round(
                    statistics.median(r["start_runs_per_s"] for r in raw[kind][w]), 1),
                "reps_steps_per_s": [round(r["steps_per_s"], 1) for r in raw[kind][w]],
            }
        # W4: the median over reps of each rep's p50/p95 (every hop of a rep pooled).
        med[kind]["W4"] = {
            "p50_ms": round(statistics.median(pct(h, 0.5) for h in raw[kind]["W4"]), 3),
            "p95_ms": round(statistics.median(pct(h, 0.95) for h in raw[kind]["W4"]), 3),
            "hops_per_rep": len(raw[kind]["W4"][0]),
        }
    ratios = {w: round(med["async"][w]["steps_per_s"] / med["sync"][w]["steps_per_s"], 3)
              for w in sizes}
    ratios["W4_p50"] = round(med["sync"]["W4"]["p50_ms"] / med["async"]["W4"]["p50_ms"], 3)
    # The two clients of one rep ran interleaved, under the same load: the median of the reps'
    # own ratios is steadier than the ratio of the medians when the load swings between reps.
    paired = {w: round(statistics.median(
        a["steps_per_s"] / b["steps_per_s"] for a, b in zip(raw["async"][w], raw["sync"][w],
                                                             strict=True)), 3) for w in sizes}
    paired["W4_p50"] = round(statistics.median(
        pct(b, 0.5) / pct(a, 0.5) for a, b in zip(raw["async"]["W4"], raw["sync"]["W4"],
                                                  strict=True)), 3)
    return {
        "quick": quick, "reps": reps, "sizes": sizes, "hop_chains": chains, "batch": BATCH,
        "machine": machine_facts(), "server": server, "medians": med,
        "ratio_async_over_sync": ratios, "paired_ratio_median": paired,
        "load_min_max": [min(x for p in loads for x in p), max(x for p in loads for x in p)],
    }


def print_section(sec: dict[str, Any]) -> None:
    """Print the side-by-side table."""
    m = sec["medians"]
    print(f"\n== clients: W1-W4 through Client and AsyncClient, medians of {sec['reps']}"
          f" (claim {sec['batch']} + complete, one connection each) ==")
    print(f"cores {sec['machine']['cores']}, load average (1 min) during the section"
          f" {sec['load_min_max'][0]}-{sec['load_min_max'][1]}")
    print(f"{'workload':<30}{'Client':>12}{'AsyncClient':>14}{'async/sync':>12}")
    names = {"W1": "W1 drain single, steps/s", "W2": "W2 3-step chains, steps/s",
             "W3": "W3 diamonds, steps/s"}
    for w in sec["sizes"]:
        print(f"{names[w]:<30}{m['sync'][w]['steps_per_s']:>12.0f}"
              f"{m['async'][w]['steps_per_s']:>14.0f}{sec['ratio_async_over_sync'][w]:>12.3f}")
    print(f"{'W1 start_flows, runs/s':<30}{m['sync']['W1']['start_runs_per_s']:>12.0f}"
          f"{m['async']['W1']['start_runs_per_s']:>14.0f}"
          f"{m['async']['W1']['start_runs_per_s'] / m['sync']['W1']['start_runs_per_s']:>12.3f}")
    print(f"{'W4 hop p50 / p95, ms':<30}"
          f"{m['sync']['W4']['p50_ms']:>6.2f} /{m['sync']['W4']['p95_ms']:>5.2f}"
          f"{m['async']['W4']['p50_ms']:>8.2f} /{m['async']['W4']['p95_ms']:>5.2f}"
          f"{sec['ratio_async_over_sync']['W4_p50']:>12.3f}  (sync/async p50)")
    print("median of the reps' own ratios (interleaved, same load): " + ", ".join(
        f"{w} {r:.3f}" for w, r in sec["paired_ratio_median"].items()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the section alone and write build/bench/clients.json."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--quick", action="store_true", help="a fifth of the sizes, 3 hop chains")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    sec = run_section(args.database_url, quick=args.quick, reps=args.reps)
    print_section(sec)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(sec, indent=2, default=str) + "\n")
    print(f"\nwrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
