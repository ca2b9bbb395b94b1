"""Benchmark flow control: the claim's cost with limits on and off, and fairness across keys.

Why: concurrency and rate limits are decided inside ``claim_tasks``, so their price is paid on
every claim; this measures it side by side in one database and one run, so that load from
anything else on the machine falls on all variants alike. And fairness is a promise about order
(a small key is not starved by a big one), which only a drain shows.

Claim cost: three flows of one step on three queues, the same number of runs each, inputs
``{"tenant": "t<k>"}`` over 1,000 keys:

* **off**: no limit;
* **per-key**: a concurrency limit per key (``set_concurrency_limit('key', ..., 5, 'tenant')``,
  5 per key, so it rarely binds: what is measured is its bookkeeping);
* **rate**: a global rate limit on the queue (10,000 starts per second, never binding here).

One connection drains the three queues in turn, one claim of ``batch`` and one
``complete_tasks`` per queue per round, and times each claim call (client side, ms). Reported:
the median and p95 per variant and each limited variant's median relative to **off**.

Fairness: an ordered queue (``set_queue_order``), one key with 10,000 ready tasks started first,
then nine keys with 10 each. Claims of 50 (each completed) until the small keys are done; reported:
the claim cycle of the small keys' first and last start (the promise: last - first <= 2), and for
comparison the same on the same queue unordered (oldest first: the small keys wait for the big
backlog).

Run alone: ``python bench/flow_control.py --database-url URL [--quick]``; ``bench/run.py`` runs it
as one of its sections.
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

KEYS = 1000
VARIANTS = ("off", "per_key", "rate")


def _flow(slug: str) -> dict[str, Any]:
    """One distributed step on the queue of the same name."""
    return {"slug": slug, "steps": [{"slug": "only", "execution": "distributed", "queue": slug}]}


def _start(conn: psycopg.Connection[Any], flow: str, inputs: Sequence[Any], **kw: Any) -> None:
    """Start runs of ``flow`` in batches of 1,000."""
    extra = "".join(f", {k} => %s" for k in kw)
    for i in range(0, len(inputs), 1000):
        conn.execute(
            f"select count(*) from workflow.start_flows(%s, %s::jsonb[]{extra})",
            [flow, [Jsonb(x) for x in inputs[i:i + 1000]], *kw.values()],
        )


def _claim(conn: psycopg.Connection[Any], queue: str, batch: int) -> list[tuple[Any, ...]]:
    """Claim up to ``batch`` tasks and complete them; return the claimed rows."""
    rows = conn.execute(
        "select task_id, attempt, run_id from workflow.claim_tasks(%s, %s)", [queue, batch]
    ).fetchall()
    if rows:
        conn.execute(
            "select count(*) from workflow.complete_tasks(%s, %s, %s::jsonb[])",
            [[r[0] for r in rows], [r[1] for r in rows], [Jsonb({}) for _ in rows]],
        )
    return rows


def claim_cost(url: str, runs: int, batch: int) -> dict[str, Any]:
    """Drain the three variants in turn from one connection; time every claim."""
    with psycopg.connect(url, autocommit=True) as conn:
        for v in VARIANTS:
            conn.execute("select workflow.register_flow(%s)", [Jsonb(_flow(f"fc_{v}"))])
        conn.execute("select workflow.set_concurrency_limit('key', 'fc_per_key', 5, 'tenant')")
        conn.execute("select workflow.set_rate_limit('queue', 'fc_rate', 10000, 1)")
        inputs = [{"tenant": f"t{i % KEYS}"} for i in range(runs)]
        for v in VARIANTS:
            _start(conn, f"fc_{v}", inputs)
        conn.execute("select workflow.maintain()")
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        left = dict.fromkeys(VARIANTS, runs)
        while any(left.values()):
            for v in VARIANTS:
                if not left[v]:
                    continue
                t0 = time.perf_counter()
                rows = conn.execute(
                    "select task_id, attempt from workflow.claim_tasks(%s, %s)", [f"fc_{v}", batch]
                ).fetchall()
                times[v].append((time.perf_counter() - t0) * 1000)
                if rows:
                    conn.execute(
                        "select count(*) from workflow.complete_tasks(%s, %s, %s::jsonb[])",
                        [[r[0] for r in rows], [r[1] for r in rows], [Jsonb({}) for _ in rows]],
                    )
                    left[v] -= len(rows)
                elif v == "rate":
                    time.sleep(0.01)  # a rate window is full: its tasks wake at its next slot
    out: dict[str, Any] = {"runs_per_variant": runs, "batch": batch, "keys": KEYS}
    base = statistics.median(times["off"])
    for v in VARIANTS:
        ts = sorted(times[v])
        out[v] = {
            "claims": len(ts),
            "ms_p50": round(statistics.median(ts), 2),
            "ms_p95": round(ts[min(len(ts) - 1, int(0.95 * len(ts)))], 2),
            "vs_off": round(statistics.median(ts) / base, 2),
        }
    return out


def fairness(url: str, big: int, small_keys: int, small_each: int, batch: int) -> dict[str, Any]:
    """Cycles in which the small keys' tasks start, ordered and unordered."""
    out: dict[str, Any] = {"big": big, "small_keys": small_keys, "small_each": small_each,
                           "batch": batch}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select workflow.register_flow(%s)", [Jsonb(_flow("fc_fair"))])
        for ordered in (True, False):
            if ordered:
                conn.execute("select workflow.set_queue_order('fc_fair')")
            else:
                conn.execute("select workflow.remove_queue_order('fc_fair')")
            _start(conn, "fc_fair", [{"n": i} for i in range(big)], concurrency_key="big")
            for k in range(small_keys):
                _start(conn, "fc_fair", [{"n": i} for i in range(small_each)],
                       concurrency_key=f"small{k}")
            small_runs = {
                r[0] for r in conn.execute(
                    "select run_id from workflow.runs where flow_slug = 'fc_fair'"
                    " and concurrency_key like 'small%%' and status = 'started'"
                ).fetchall()
            }
            cycles: list[int] = []
            cycle = 0
            t0 = time.perf_counter()
            while len(cycles) < len(small_runs):
                cycle += 1
                rows = _claim(conn, "fc_fair", batch)
                if not rows:
                    break
                cycles += [cycle for r in rows if r[2] in small_runs]
            wall = time.perf_counter() - t0
            # drain the rest so the next variant starts from an empty queue
            while _claim(conn, "fc_fair", 1000):
                pass
            out["ordered" if ordered else "unordered"] = {
                "first_small_cycle": min(cycles) if cycles else None,
                "last_small_cycle": max(cycles) if cycles else None,
                "cycles_first_to_last": (max(cycles) - min(cycles)) if cycles else None,
                "wall_s_until_small_done": round(wall, 2),
            }
    return out


def run_section(admin_url: str, *, quick: bool) -> dict[str, Any]:
    """Both measurements in a throwaway database; return the section of the report."""
    import run as sql_bench

    from singularity_workflow import install

    with sql_bench.throwaway_database(admin_url, "sw_bench_fc") as db:
        url = make_conninfo(admin_url, dbname=db)
        install(url)
        runs = 2000 if quick else 20000
        print(f"flow control: claim cost, {runs} runs x 3 variants, batch 50 ...", flush=True)
        cost = claim_cost(url, runs, 50)
        print("flow control: fairness, 10,000 + 9 x 10 tasks, batch 50 ...", flush=True)
        fair = fairness(url, 10000, 9, 10, 50)
    return {"claim_cost": cost, "fairness": fair}


def print_section(sec: dict[str, Any]) -> None:
    """Print the two tables."""
    c = sec["claim_cost"]
    print(f"\n== flow control: claim cost, batch {c['batch']}, {c['runs_per_variant']} runs each,"
          f" {c['keys']} keys, one connection, variants interleaved ==")
    print(f"{'variant':<10}{'claims':>8}{'p50 ms':>9}{'p95 ms':>9}{'vs off':>8}")
    for v in VARIANTS:
        r = c[v]
        print(f"{v:<10}{r['claims']:>8}{r['ms_p50']:>9.2f}{r['ms_p95']:>9.2f}{r['vs_off']:>7.2f}x")
    f = sec["fairness"]
    print(f"\n== flow control: fairness, 1 key x {f['big']} + {f['small_keys']} keys x"
          f" {f['small_each']}, claims of {f['batch']} ==")
    for variant in ("ordered", "unordered"):
        r = f[variant]
        print(f"{variant:<10} small keys' first start in claim {r['first_small_cycle']},"
              f" last in claim {r['last_small_cycle']}"
              f" ({r['cycles_first_to_last']} cycles apart; {r['wall_s_until_small_done']} s)")
    verdict = "meets" if (f["ordered"]["cycles_first_to_last"] or 0) <= 2 else "MISSES"
    print(f"goal (ordered: last small start within 2 claims of the first): {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the section alone and write build/bench/flow_control.json."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    sec = run_section(args.database_url, quick=args.quick)
    print_section(sec)
    out = Path(__file__).resolve().parent.parent / "build" / "bench" / "flow_control.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(sec, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
