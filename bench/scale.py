"""Workers on other hosts: W1, W3 and hop latency through real network round trips.

Why: a worker on another host pays a network round trip for every claim, every completion flush
and every wake-up. On one machine that cost is invisible, so this builds the distance: each
worker process runs in a network namespace of its own (a "host"), joined to this one by a veth
pair, and reaches PostgreSQL through a latency-injecting TCP proxy that holds every chunk of
bytes for half the round trip in each direction (this kernel has no ``netem``; the proxy keeps
the byte order and does not limit throughput: many chunks can be in flight at once, as on a
real link, so pipelining and batching still pay off).

Picture, for each of ``--workers`` hosts (default 3)::

    namespace swscale<i>            this namespace (the "database host")
    worker ── veth 10.231.<i>.2 ── veth 10.231.<i>.1 ── delay proxy ── 127.0.0.1:5432

Cases, one after the other in one run (each with fresh worker processes):

* ``local``: the workers in this namespace, connecting to the server directly;
* ``0 ms``: through the namespaces and the proxy with no delay (the harness's own cost);
* ``2 ms`` and ``10 ms`` round trips (``--rtts``).

Per case: W1 (``--single`` one-step runs drained, tasks/s), W3 (``--diamonds`` 1 -> 10 -> 1
diamonds, steps/s) and the hop latency along 20-step chains run one at a time (completion of
step n in the database to the handler start of step n+1, p50/p95). Throughput comes from the
tasks' own ``started_at``/``completed_at``. Each case's W1 is also reported as a share of the
local figure (the goal: at 10 ms, at least 50%).

Clean-up is part of the run: the namespaces, veth pairs, proxies, worker processes and the
throwaway database are removed at the end, even after an error, and then checked to be gone
(a leftover is reported and makes the exit status 1). Needs root (``ip netns``) and a local
server. Standalone only (``make bench-scale``); ``--quick`` is a 30-second smoke version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import pairwise
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import throwaway_database  # noqa: E402  (bench/run.py, beside this file)
from worker_e2e import (  # noqa: E402  (the local bench's flows and measurements)
    HOP_STEPS,
    QUEUE,
    STEPS,
    define_flows,
    load_avg,
    reset,
    summary,
    wait_runs_done,
)

OUT = HERE.parent / "build" / "bench" / "scale.json"
NS_PREFIX = "swscale"  # every namespace and veth this bench makes starts with this
SUBNET = "10.231"  # 10.231.<i>.0/30 per host: addresses of namespaces this bench creates
PROXY_PORT = 6543
CONCURRENCY = 10


# --- the delay proxy ---------------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy bytes from reader to writer, each chunk ``delay`` seconds after it arrived.

    Reading and writing are two tasks joined by a queue, so a chunk waiting out its delay never
    holds back the reading of the next: the link has the latency of a long wire, not the
    bandwidth of one chunk per delay.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait((0.0, b""))

    async def write() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with suppress(Exception):
            writer.close()


async def _proxy(listen: str, port: int, target: tuple[str, int], delay: float) -> None:
    """Serve the delay proxy until cancelled: one upstream connection per client connection."""

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(*target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, uw, delay), _pipe(ur, cw, delay))

    server = await asyncio.start_server(handle, listen, port)
    print(json.dumps({"listening": f"{listen}:{port}"}), flush=True)
    async with server:
        await server.serve_forever()


def proxy_main(listen: str, port: int, target: str, delay_ms: float) -> int:
    """Entry point of ``scale.py proxy``: a process of its own, so its loop has a core to itself."""
    host, _, tport = target.rpartition(":")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with suppress(KeyboardInterrupt):
        asyncio.run(_proxy(listen, port, (host, int(tport)), delay_ms / 2000.0))
    return 0


# --- hosts: namespaces and veth pairs ----------------------------------------------------------


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; raise with its stderr when it fails and ``check``."""
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
    return done


def host_addr(i: int) -> tuple[str, str]:
    """Return (this side's address, the namespace's address) of host ``i``."""
    return f"{SUBNET}.{i}.1", f"{SUBNET}.{i}.2"


def make_hosts(n: int) -> list[str]:
    """Create ``n`` namespaces, each joined to this one by a veth pair; return their names."""
    names = []
    for i in range(1, n + 1):
        ns, outer, inner = f"{NS_PREFIX}{i}", f"{NS_PREFIX}{i}h", f"{NS_PREFIX}{i}n"
        here, there = host_addr(i)
        sh("ip", "netns", "add", ns)
        names.append(ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "addr", "add", f"{here}/30", "dev", outer)
        sh("ip", "link", "set", outer, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{there}/30", "dev", inner)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    return names


def remove_hosts() -> None:
    """Delete every namespace and veth this bench may have made (deleting one end drops both)."""
    for ns in leftovers()["namespaces"]:
        sh("ip", "netns", "delete", ns, check=False)
    for link in leftovers()["links"]:
        sh("ip", "link", "delete", link, check=False)


def leftovers() -> dict[str, list[str]]:
    """Return what of this bench still exists: namespaces, links, processes."""
    ns = [line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines()
          if line.startswith(NS_PREFIX)]
    links = [line.split(":")[1].strip().split("@")[0]
             for line in sh("ip", "-o", "link", "show").stdout.splitlines()
             if line.split(":")[1].strip().startswith(NS_PREFIX)]
    procs = [line for line in sh("pgrep", "-af", "bench/scale.py (proxy|serve)", check=False)
             .stdout.splitlines() if str(os.getpid()) != line.split()[0]]
    return {"namespaces": ns, "links": links, "processes": procs}


# --- worker processes --------------------------------------------------------------------------


def serve(url: str, concurrency: int) -> int:
    """Worker process: build the flows, serve the bench queue until SIGTERM or "stop" on stdin."""
    from singularity_workflow import Worker

    define_flows()
    worker = Worker(url, queues=[QUEUE], concurrency=concurrency)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.run_in_thread()
    print(json.dumps({"ready": os.getpid()}), flush=True)

    def stop_on_input() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=stop_on_input, daemon=True).start()
    stop.wait()
    worker.stop()
    worker.join(30)
    st = worker.stats
    print(json.dumps({"stats": None if st is None else {
        "claimed": st.claimed, "completed": st.completed, "reconnects": st.reconnects}}),
        flush=True)
    return 0


class Proc:
    """A child process of this bench (a proxy or a worker) that prints JSON lines."""

    def __init__(self, cmd: list[str], namespace: str | None = None) -> None:
        if namespace:
            cmd = ["ip", "netns", "exec", namespace, *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.first = self.line()

    def line(self) -> dict[str, Any]:
        """Read the next JSON line; raise if the process exited instead."""
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        if not text:
            raise RuntimeError(f"{self.proc.args} exited ({self.proc.wait()})")
        parsed: dict[str, Any] = json.loads(text)
        return parsed

    def stop(self) -> None:
        """Ask it to stop (stdin for workers, SIGTERM for proxies) and wait; kill if it hangs."""
        if self.proc.poll() is None:
            with suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def case(db: str, hosts: list[str], rtt_ms: float | None) -> Iterator[list[Proc]]:
    """Start one proxy per host (unless local) and one worker per host; yield the workers."""
    me = str(Path(__file__).resolve())
    procs: list[Proc] = []
    workers: list[Proc] = []
    try:
        for i, ns in enumerate(hosts, start=1):
            if rtt_ms is None:  # local: this namespace, the server directly
                url, where = f"host=127.0.0.1 port=5432 dbname={db}", None
            else:
                here, _ = host_addr(i)
                procs.append(Proc([sys.executable, me, "proxy", "--listen", here, "--port",
                                   str(PROXY_PORT), "--delay-ms", str(rtt_ms)]))
                url, where = f"host={here} port={PROXY_PORT} dbname={db}", ns
            w = Proc([sys.executable, me, "serve", "--database-url", url], namespace=where)
            workers.append(w)
        yield workers
    finally:
        for p in workers + procs:
            p.stop()


# --- measuring ---------------------------------------------------------------------------------


def load(conn: Any, flow: str, runs: int) -> None:
    """Start ``runs`` runs of ``flow``, 100 per statement, before any worker runs."""
    for first in range(0, runs, 100):
        conn.execute("select count(workflow.start_flow(%s, jsonb_build_object('i', g)))"
                     " from generate_series(%s::int, %s::int) as g",
                     [flow, first + 1, min(runs, first + 100)])
    conn.execute("select workflow.maintain()")


def drained(conn: Any, flow: str, runs: int, steps: int) -> dict[str, Any]:
    """Wait for the loaded runs to finish; return tasks/s from first claim to last completion."""
    wait_runs_done(conn, runs)
    tasks, window = conn.execute(
        "select count(*), extract(epoch from max(completed_at) - min(started_at))"
        " from workflow.tasks where status = 'completed'").fetchone()
    if tasks != runs * steps:
        raise RuntimeError(f"{flow}: {tasks}/{runs * steps} tasks completed")
    return {"tasks": tasks, "window_s": round(float(window), 3),
            "per_s": round(tasks / float(window), 1)}


def hops(conn: Any, chains: int) -> dict[str, Any]:
    """Run ``chains`` 20-step chains one at a time; return hop latency (db completion -> start)."""
    for i in range(chains):
        time.sleep(0.2)  # let the workers go idle, waiting on their wake-up
        conn.execute("select workflow.start_flow('e2e_hop', jsonb_build_object('i', %s::int))",
                     [i])
        wait_runs_done(conn, i + 1, timeout=120)
    rows = conn.execute(
        "select run_id, extract(epoch from completed_at), (output->>'s')::float8"
        " from workflow.tasks where status = 'completed' order by run_id, step_slug").fetchall()
    by_run: dict[Any, list[tuple[float, float]]] = {}
    for run_id, done_at, start in rows:
        by_run.setdefault(run_id, []).append((float(done_at), float(start)))
    ms = [(nxt[1] - cur[0]) * 1000 for steps in by_run.values()
          for cur, nxt in pairwise(steps)]
    if len(ms) != chains * (HOP_STEPS - 1):
        raise RuntimeError(f"hop chains: {len(ms)} hops, expected {chains * (HOP_STEPS - 1)}")
    return summary(ms)


def measure(url: str, db: str, hosts: list[str], rtt: float | None, args: argparse.Namespace,
            ) -> dict[str, Any]:
    """Measure one case (``rtt`` None = local): W1 and W3, ``--reps`` times, then the hops.

    For a drain the runs are loaded first and the workers started afterwards (the window opens
    at the first claim), so neither the start-up of the workers nor the starts are measured.
    """
    import psycopg

    out: dict[str, Any] = {"load_1m": load_avg()}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, flow, runs, steps in (("w1", "e2e_single", args.single, STEPS["single"]),
                                        ("w3", "e2e_diamond", args.diamonds, STEPS["diamond"])):
            reps = []
            for _ in range(args.reps):
                reset(conn)
                load(conn, flow, runs)
                with case(db, hosts, rtt):
                    reps.append(drained(conn, flow, runs, steps))
            reps.sort(key=lambda r: r["per_s"])
            out[name] = {**reps[len(reps) // 2], "all_reps": [r["per_s"] for r in reps]}
        reset(conn)
        with case(db, hosts, rtt):
            out["hop_ms"] = hops(conn, args.chains)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments: ``proxy`` and ``serve`` are the child processes, the default the bench."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="bench", choices=["bench", "proxy", "serve"])
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "host=127.0.0.1 "
                                                            "port=5432 dbname=postgres"))
    p.add_argument("--listen")
    p.add_argument("--port", type=int, default=PROXY_PORT)
    p.add_argument("--target", default="127.0.0.1:5432")
    p.add_argument("--delay-ms", type=float, default=0.0, help="proxy: the round trip it adds")
    p.add_argument("--workers", type=int, default=3, help="hosts, one worker process each")
    p.add_argument("--rtts", default="0,2,10", help="round trips to add, ms, comma-separated")
    p.add_argument("--single", type=int, default=2000, help="W1: one-step runs per drain")
    p.add_argument("--diamonds", type=int, default=100, help="W3: 1 -> 10 -> 1 diamonds")
    p.add_argument("--chains", type=int, default=3, help="20-step chains for the hop latency")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    p.add_argument("--out", type=Path, default=OUT, help="where the JSON report goes")
    args = p.parse_args(argv)
    if args.mode == "proxy":
        return proxy_main(args.listen, args.port, args.target, args.delay_ms)
    if args.mode == "serve":
        return serve(args.database_url, CONCURRENCY)
    if args.quick:
        args.single, args.diamonds, args.chains, args.reps = 500, 20, 1, 1
    if os.geteuid() != 0:
        print("bench-scale needs root (it creates network namespaces); skipped", file=sys.stderr)
        return 2
    return bench(args)


def bench(args: argparse.Namespace) -> int:
    """Build the hosts, measure every case, print the table, tear everything down and check."""
    from psycopg.conninfo import make_conninfo

    from singularity_workflow import Client, install

    # A SIGTERM (a timeout, a kill) unwinds through the clean-up below instead of skipping it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rtts = [float(x) for x in args.rtts.split(",") if x.strip()]
    report: dict[str, Any] = {"settings": {
        "workers": args.workers, "concurrency": CONCURRENCY, "single": args.single,
        "diamonds": args.diamonds, "chains": args.chains, "reps": args.reps, "rtts_ms": rtts,
        "cores": os.cpu_count()}, "cases": {}}
    remove_hosts()  # what an interrupted earlier run left
    status = 0
    try:
        hosts = make_hosts(args.workers)
        with throwaway_database(args.database_url, "sw_bench_scale") as db:
            url = make_conninfo(args.database_url, dbname=db)
            install(url)
            with Client(url) as client:
                for d in define_flows():
                    client.register_flow(d)
            for label, rtt in [("local", None), *((f"{r:g} ms", r) for r in rtts)]:
                print(f"scale: {label} ...", end=" ", flush=True)
                res = measure(url, db, hosts, rtt, args)
                report["cases"][label] = res
                print(f"W1 {res['w1']['per_s']:.0f}/s, W3 {res['w3']['per_s']:.0f}/s, hop p50 "
                      f"{res['hop_ms']['p50']:.1f} ms (load {res['load_1m']})", flush=True)
    finally:
        remove_hosts()
        left = leftovers()
        report["leftovers"] = left
        if any(left.values()):
            print(f"scale: LEFT BEHIND: {left}", file=sys.stderr)
            status = 1
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"(written to {args.out})")
    return status


def print_table(report: dict[str, Any]) -> None:
    """Print one row per case, W1 also as a share of the local figure."""
    cases = report["cases"]
    if not cases:
        return
    local = cases.get("local", {}).get("w1", {}).get("per_s")
    s = report["settings"]
    print(f"\nworkers on other hosts: {s['workers']} worker processes (concurrency "
          f"{s['concurrency']}), {s['cores']} cores shared with PostgreSQL; medians of "
          f"{s['reps']}")
    print(f"{'case':>8} | {'W1 tasks/s':>10} | {'of local':>8} | {'W3 steps/s':>10} | "
          f"{'hop p50':>7} | {'hop p95':>7} | load")
    for label, c in cases.items():
        share = f"{100 * c['w1']['per_s'] / local:.0f}%" if local else "-"
        print(f"{label:>8} | {c['w1']['per_s']:>10.0f} | {share:>8} | {c['w3']['per_s']:>10.0f}"
              f" | {c['hop_ms']['p50']:>7.1f} | {c['hop_ms']['p95']:>7.1f} | {c['load_1m']}")
    print("hop: database completion of step n -> handler start of step n+1, ms")


if __name__ == "__main__":
    sys.exit(main())
