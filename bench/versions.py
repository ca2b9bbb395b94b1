"""Benchmark what flow versions cost the hot path: one version vs version 20 with pinned runs.

Why: versions put a version id on every run and step state, claims of a worker that names the
shape hashes it serves filter by the run's version, and ``register_flow`` of a known shape
must stay a cheap no-op. The promise: none of that costs anything measurable. This measures it
side by side in one run.

Setup, one throwaway database, two pairs of flows of the same shape, every step distributed on
queue ``vq``:

* **flat**: ``v_flat`` (1 step) and ``v_flat_hop`` (a 20-step chain), registered once:
  version 1, nothing else;
* **deep**: ``v_deep`` and ``v_deep_hop``, the same shapes at **version 20**: versions 1-19
  differ in their steps' queue (``vold_1`` ... ``vold_19``, part of the shape hash), runs are
  pinned to versions 5, 10 and 15 (100 each, left queued on their old queues: in flight for the
  whole benchmark), versions 1-19 are then retired, and version 20 is the flat shape.

One worker row (``register_worker``) names both pairs per version (``{"flow": {"<shape
hash>": [steps]}}``, what ``Worker`` does), and every claim passes its id, so each claim takes
the version-aware path. Measured through one ``Client`` connection (``bench/clients.py``'s
drive: ``claim_tasks(vq, 10, worker_id)`` then one ``complete_tasks``, no handler work):

* **W1**: drain 2,000 single-step runs (steps/s), flat vs deep;
* **W4**: hop latency along 20-step chains run one at a time (p50/p95 ms), flat vs deep;
* **register_flow no-op**: ``select workflow.register_flow(<the current shape>)`` for v_flat
  and for v_deep (20 versions, found by hash) vs ``select 1``, one connection, interleaved,
  median of 300 each (client-side round trip, in ms).

Tables are not emptied between measurements (that would end the pinned runs); instead each of
the ``--reps`` repetitions (3: medians of 3) alternates flat and deep in slices (W1 in 4 drains
of a quarter of the runs each, W4 one chain at a time), the order swapped every repetition, so
both see tables of the same size and the same bursts of load from elsewhere. The 1-minute load
average is reported with the figures.

Run: ``python bench/versions.py [--database-url URL] [--quick] [--reps N]``; stdout and
``build/bench/versions.json``. ``make bench`` runs it too (``--no-versions`` there skips it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import drain_sync, flow_json, hop_sync, pct  # noqa: E402
from run import machine_facts, server_facts, throwaway_database  # noqa: E402
from worker_e2e import flow_shapes, load_avg  # noqa: E402

from singularity_workflow import Client, install  # noqa: E402

QUEUE = "vq"
WORKER = "bench-versions"
OLD_VERSIONS = 19
PINNED_VERSIONS = (5, 10, 15)
PINNED_RUNS = 100
CALLS = 300
SLICES = 4
OUT = Path(__file__).resolve().parent.parent / "build" / "bench" / "versions.json"


def prepare(client: Client) -> dict[str, Any]:
    """Register the four flows (deep ones at version 20, pinned runs, 1-19 retired), the worker."""
    shapes = flow_shapes()
    single, hop = shapes["e2e_single"], shapes["e2e_hop"]
    handlers: dict[str, dict[str, list[str]]] = {}
    current: dict[str, dict[str, Any]] = {}
    pinned = 0
    for slug, steps in (("v_flat", single), ("v_flat_hop", hop),
                        ("v_deep", single), ("v_deep_hop", hop)):
        if slug.startswith("v_deep"):
            for v in range(1, OLD_VERSIONS + 1):
                old = client.register_flow_version(flow_json(slug, steps, queue=f"vold_{v}"))
                assert old.version == v, old
                if v in PINNED_VERSIONS:
                    client.start_flows(slug, [{}] * PINNED_RUNS)
                    pinned += PINNED_RUNS
        body = flow_json(slug, steps, queue=QUEUE)
        reg = client.register_flow_version(body)
        if slug.startswith("v_deep"):
            assert reg.version == OLD_VERSIONS + 1, reg
            for v in range(1, OLD_VERSIONS + 1):
                client.retire_flow_version(slug, v)
        handlers[slug] = {reg.shape_hash: [name for name, _ in steps]}
        current[slug] = body
    with client.connection() as conn:
        conn.execute(
            "select workflow.register_worker(%s, queues => %s, handlers => %s,"
            " heartbeat_timeout_seconds => 3600)", [WORKER, [QUEUE], Jsonb(handlers)])
    return {"current": current, "pinned_runs": pinned}


def register_noop_ms(url: str, bodies: dict[str, Any]) -> dict[str, float]:
    """Median round trip (ms) of register_flow of an unchanged shape vs ``select 1``."""
    times: dict[str, list[float]] = {"select_1": [], "v_flat": [], "v_deep": []}
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(20):  # warm the plans
            conn.execute("select 1")
            for slug in ("v_flat", "v_deep"):
                conn.execute("select workflow.register_flow(%s)", [Jsonb(bodies[slug])])
        for i in range(CALLS):
            t0 = time.perf_counter()
            conn.execute("select 1").fetchone()
            times["select_1"].append((time.perf_counter() - t0) * 1000)
            # The two flows' order alternates, so neither always runs right after the other.
            for slug in ("v_flat", "v_deep") if i % 2 == 0 else ("v_deep", "v_flat"):
                t0 = time.perf_counter()
                conn.execute("select workflow.register_flow(%s)", [Jsonb(bodies[slug])]).fetchone()
                times[slug].append((time.perf_counter() - t0) * 1000)
        versions = conn.execute(
            "select count(*) from workflow.flow_versions where flow_slug = 'v_deep'").fetchone()
    assert versions is not None and versions[0] == OLD_VERSIONS + 1, versions
    return {k: round(statistics.median(v), 4) for k, v in times.items()}


def run_section(admin_url: str, *, quick: bool, reps: int) -> dict[str, Any]:
    """Measure W1 and W4 for flat vs deep, and the register_flow no-op, ``reps`` times."""
    runs = 400 if quick else 2000
    chains = 3 if quick else 10
    variants = ("flat", "deep")
    w1: dict[str, list[float]] = {v: [] for v in variants}
    w4: dict[str, list[list[float]]] = {v: [] for v in variants}
    reg: list[dict[str, float]] = []
    loads: list[float] = []
    with throwaway_database(admin_url, "sw_bench_versions") as name:
        url = make_conninfo(admin_url, dbname=name)
        install(url)
        server = server_facts(url)
        with Client(url) as client:
            facts = prepare(client)
            client.maintain()
            for v in variants:  # warm the connection and the plans
                drain_sync(client, f"v_{v}", 50, queue=QUEUE, worker_id=WORKER)
            for rep in range(reps):
                order = variants if rep % 2 == 0 else variants[::-1]
                # Each rep alternates the two in SLICES slices (a drain of runs/SLICES, one hop
                # chain), so a burst of load from elsewhere on the machine falls on both alike.
                busy = {v: 0.0 for v in variants}
                hops: dict[str, list[float]] = {v: [] for v in variants}
                for _ in range(SLICES):
                    for v in order:
                        loads.append(load_avg())
                        rate = drain_sync(client, f"v_{v}", runs // SLICES, queue=QUEUE,
                                          worker_id=WORKER)["steps_per_s"]
                        busy[v] += (runs // SLICES) / rate
                for _ in range(chains):
                    for v in order:
                        hops[v] += hop_sync(client, f"v_{v}_hop", 1, queue=QUEUE,
                                            worker_id=WORKER)
                for v in variants:
                    w1[v].append(SLICES * (runs // SLICES) / busy[v])
                    w4[v].append(hops[v])
                loads.append(load_avg())
                reg.append(register_noop_ms(url, facts["current"]))
            loads.append(load_avg())
            with client.connection() as conn:
                live = conn.execute(
                    "select count(*) from workflow.runs r join workflow.flow_versions v"
                    " on v.version_id = r.version_id where r.flow_slug = 'v_deep'"
                    " and r.status = 'started' and v.version < %s", [OLD_VERSIONS + 1]).fetchone()
    med_w1 = {v: round(statistics.median(w1[v]), 1) for v in variants}
    med_w4 = {v: {"p50_ms": round(statistics.median(pct(h, 0.5) for h in w4[v]), 3),
                  "p95_ms": round(statistics.median(pct(h, 0.95) for h in w4[v]), 3)}
              for v in variants}
    med_reg = {k: round(statistics.median(r[k] for r in reg), 4) for k in reg[0]}
    # flat and deep of one rep ran interleaved, under the same load: the median of the reps'
    # own ratios is steadier than the ratio of the medians when the load swings between reps.
    paired = {
        "w1": round(statistics.median(d / f for d, f in zip(w1["deep"], w1["flat"],
                                                             strict=True)), 3),
        "w4_p50": round(statistics.median(pct(d, 0.5) / pct(f, 0.5) for d, f in zip(
            w4["deep"], w4["flat"], strict=True)), 3),
    }
    return {
        "quick": quick, "reps": reps, "w1_runs": runs, "w4_chains": chains,
        "old_versions": OLD_VERSIONS, "pinned_runs_in_flight": live[0] if live else None,
        "machine": machine_facts(), "server": server,
        "w1_steps_per_s": med_w1, "w1_reps": w1,
        "w1_ratio_deep_over_flat": round(med_w1["deep"] / med_w1["flat"], 3),
        "w4": med_w4,
        "w4_p50_ratio_deep_over_flat": round(
            med_w4["deep"]["p50_ms"] / med_w4["flat"]["p50_ms"], 3),
        "paired_ratio_median_deep_over_flat": paired,
        "register_noop_ms": med_reg, "register_reps": reg,
        "load_min_max": [min(loads), max(loads)],
    }


def print_section(sec: dict[str, Any]) -> None:
    """Print the side-by-side table."""
    print(f"\n== versions: 1 version vs version {sec['old_versions'] + 1} ({sec['old_versions']}"
          f" retired, {sec['pinned_runs_in_flight']} runs pinned to old versions in flight),"
          f" medians of {sec['reps']} ==")
    print(f"cores {sec['machine']['cores']}, load average (1 min) during the section"
          f" {sec['load_min_max'][0]}-{sec['load_min_max'][1]}")
    print(f"{'':<34}{'1 version':>12}{'version 20':>12}{'deep/flat':>11}")
    w1 = sec["w1_steps_per_s"]
    print(f"{'W1 drain single, steps/s':<34}{w1['flat']:>12.0f}{w1['deep']:>12.0f}"
          f"{sec['w1_ratio_deep_over_flat']:>11.3f}")
    w4 = sec["w4"]
    print(f"{'W4 hop p50 / p95, ms':<34}"
          f"{w4['flat']['p50_ms']:>6.2f} /{w4['flat']['p95_ms']:>5.2f}"
          f"{w4['deep']['p50_ms']:>6.2f} /{w4['deep']['p95_ms']:>5.2f}"
          f"{sec['w4_p50_ratio_deep_over_flat']:>11.3f}  (p50)")
    p = sec["paired_ratio_median_deep_over_flat"]
    print(f"median of the reps' own ratios deep/flat (interleaved, same load): W1 {p['w1']:.3f},"
          f" W4 p50 {p['w4_p50']:.3f}")
    r = sec["register_noop_ms"]
    print(f"{'register_flow unchanged, ms':<34}{r['v_flat']:>12.3f}{r['v_deep']:>12.3f}"
          f"{r['v_deep'] / r['v_flat']:>11.3f}")
    print(f"{'select 1 round trip, ms':<34}{r['select_1']:>12.3f}"
          f"   (register_flow no-op / select 1: flat {r['v_flat'] / r['select_1']:.2f},"
          f" deep {r['v_deep'] / r['select_1']:.2f})")


def main(argv: list[str] | None = None) -> int:
    """Run the section alone and write build/bench/versions.json."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--quick", action="store_true", help="400 runs for W1, 3 hop chains")
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
