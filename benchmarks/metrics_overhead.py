"""The cost of /metrics: the same distinct uncached tiles with metrics on and off, paired.

Two ``tiler serve`` processes run side by side on the built-in demo (one worker each,
rendered-tile cache off): one with ``TILER_METRICS=true`` (prometheus-client's multiprocess
mode, request metrics, GDAL's network counts), one with ``TILER_METRICS=false``. Each tile
URL (demo tiles z11-z14, best and worst pixel, a ``max`` that changes per URL, so every
request is computed) is requested from both, one right after the other, in an order that
alternates from tile to tile and from round to round (the second request of a pair may find
the files in the page cache the first one filled). Pairs taken moments apart share the
machine's load, so the ratio of a pair's two latencies is far less noisy than separate runs.

Printed, one JSON line per round then a summary: median latency with and without, the
median of the pairs' ratios (on / off), its overhead in % (target < 2 %) and the spread of
the rounds' ratios (the noise); the servers' CPU seconds per tile (user + system, summed per
round: CPU time is less skewed by other processes than latency) and their ratio; then,
unaffected by other processes, the time of the metrics code a tile request runs (the gate's
counters, one ``observe``, the storage sample) as a share of the median tile.

Run: ``python benchmarks/metrics_overhead.py`` (about 3 minutes: 5 rounds of 40 tiles;
``--rounds`` and ``--tiles`` change it, ``--quick`` is a smoke run of a few seconds). Other
processes on the machine skew every figure: the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile

import psutil
import support_path  # noqa: F401 (tests/ on sys.path: the support package)
from load import Sample, fetch, tile_paths
from support.nginx import stop
from throughput import ROOT, distinct, loadavg, serve

#: what a tile request costs the metrics (multiprocess mode): the gate's four counter changes
#: and one observe() with its stage and item histograms and the sample of GDAL's network counts
OBSERVE = """
import time
from tiler.api.metrics import Metrics, ObservedGate
from tiler.api.requests_log import Route, Work
m = Metrics(catalog_kinds={"demo": "MemoryCatalog"})
g = ObservedGate(limit=4, timeout=60).watch(m)
route = Route("tile", "/collections/{collection_id}/tiles/...", "demo")
work = Work(considered=13, read=3, used=3, cache="miss",
            timings={"search": 0.001, "quality": 0.03, "bands": 0.02, "render": 0.005})
n = 20000
t = time.perf_counter()
for _ in range(n):
    g.in_flight += 1
    g.in_flight -= 1
    m.observe(route, 200, 0.05, work)
print((time.perf_counter() - t) / n)
"""


def observe_cost() -> float:
    """Seconds of metrics code per tile request, in prometheus-client's multiprocess mode."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        out = subprocess.run(
            [sys.executable, "-c", OBSERVE], env=env, cwd=ROOT, capture_output=True, check=True
        )
    return float(out.stdout)


def latency(port: int, path: str) -> float | None:
    """Seconds of one GET (None unless it answered 200)."""
    sample = Sample()
    asyncio.run(fetch(port, path, 60, sample))
    found = sample.latencies(200)
    return found[0] if found else None


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """User and system CPU seconds of a server process and its children (the worker)."""
    total = 0.0
    parent = psutil.Process(proc.pid)
    for each in [parent, *parent.children(recursive=True)]:
        times = each.cpu_times()
        total += times.user + times.system
    return total


def spread(values: list[float]) -> float:
    """Max minus min (0 for fewer than two values)."""
    return max(values) - min(values) if len(values) > 1 else 0.0


def paired(rounds: int, tiles: int, warmup: int) -> dict[str, object]:
    """Serve ``rounds`` x ``tiles`` distinct tiles from both servers, pair by pair."""
    servers = {flag: serve(1, None, {"TILER_METRICS": flag}) for flag in ("true", "false")}
    ports = {flag: port for flag, (_, port) in servers.items()}
    try:
        paths = distinct(tile_paths(ports["true"]), warmup + rounds * tiles)
        for path in paths[:warmup]:
            for port in ports.values():
                latency(port, path)
        on_all: list[float] = []
        off_all: list[float] = []
        ratios: list[float] = []
        round_ratios: list[float] = []
        cpu_ratios: list[float] = []
        cpu_per_tile: dict[str, list[float]] = {"true": [], "false": []}
        for r in range(rounds):
            on: list[float] = []
            off: list[float] = []
            chunk = paths[warmup + r * tiles : warmup + (r + 1) * tiles]
            cpu = {flag: -cpu_seconds(proc) for flag, (proc, _) in servers.items()}
            for i, path in enumerate(chunk):
                order = ("true", "false") if (r + i) % 2 == 0 else ("false", "true")
                got = {flag: latency(ports[flag], path) for flag in order}
                if got["true"] is None or got["false"] is None:
                    continue
                on.append(got["true"])
                off.append(got["false"])
            for flag, (proc, _) in servers.items():
                cpu_per_tile[flag].append((cpu[flag] + cpu_seconds(proc)) / len(chunk))
            cpu_ratios.append(cpu_per_tile["true"][-1] / cpu_per_tile["false"][-1])
            pairs = [a / b for a, b in zip(on, off, strict=True)]
            round_ratios.append(statistics.median(pairs))
            ratios += pairs
            on_all += on
            off_all += off
            print(
                json.dumps(
                    {
                        "round": r + 1,
                        "pairs": len(pairs),
                        "median ms with": round(statistics.median(on) * 1000, 1),
                        "median ms without": round(statistics.median(off) * 1000, 1),
                        "median ratio": round(round_ratios[-1], 4),
                        "server CPU ms per tile with": round(cpu_per_tile["true"][-1] * 1000, 1),
                        "server CPU ms per tile without": round(
                            cpu_per_tile["false"][-1] * 1000, 1
                        ),
                        "CPU ratio": round(cpu_ratios[-1], 4),
                        "load average": loadavg(),
                    }
                ),
                flush=True,
            )
    finally:
        for proc, _ in servers.values():
            stop(proc)
    median_off = statistics.median(off_all)
    code = observe_cost()
    ratio = statistics.median(ratios)
    out = {
        "run": f"metrics on vs off, {rounds} rounds x {tiles} distinct tiles, paired",
        "median ms with": round(statistics.median(on_all) * 1000, 1),
        "median ms without": round(median_off * 1000, 1),
        "median of pair ratios": round(ratio, 4),
        "overhead %": round((ratio - 1) * 100, 2),
        "target %": "< 2",
        "rounds' ratios spread %": round(spread(round_ratios) * 100, 2),
        "server CPU ms per tile with": round(statistics.median(cpu_per_tile["true"]) * 1000, 1),
        "server CPU ms per tile without": round(statistics.median(cpu_per_tile["false"]) * 1000, 1),
        "CPU overhead % (median of rounds)": round((statistics.median(cpu_ratios) - 1) * 100, 2),
        "rounds' CPU ratios spread %": round(spread(cpu_ratios) * 100, 2),
        "metrics code per request us (multiprocess mode)": round(code * 1e6, 1),
        "metrics code / median tile %": round(code / median_off * 100, 3),
        "load average": loadavg(),
    }
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (order alternates)")
    parser.add_argument("--tiles", type=int, default=40, help="distinct tiles per round")
    parser.add_argument("--warmup", type=int, default=10, help="tiles first, not measured")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds x 4 tiles")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.tiles, args.warmup = 2, 4, 2
    print(f"load average before: {loadavg()}")
    paired(args.rounds, args.tiles, args.warmup)


if __name__ == "__main__":
    main()
