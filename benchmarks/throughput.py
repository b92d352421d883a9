"""Throughput across workers and cores, through the nginx cache, and the cost of /metrics.

Serves the built-in demo with ``tiler serve`` (rendered-tile cache off:
``TILER_TILE_CACHE_BYTES=0``) on 127.0.0.1 and drives it from this process with
``benchmarks/load.py``'s client (one connection per request): every request is a distinct
URL (demo tiles z11-z14, best and worst pixel, a ``max`` that changes per request), so each
is computed.

1. **scaling**: a closed loop of 2 x the server's computation slots for ``--seconds``:
   one worker pinned to one core (``taskset -c 0``, 1 read thread), two workers on two cores
   (``taskset -c 0,1``, 1 read thread each), one unpinned worker (2 read threads). Tiles per
   second (200s) and p99. Target: two workers / one pinned worker >= 1.8.
2. **nginx cache**: ``deploy/nginx/tiler.conf.template`` rendered as the tests do, Debian's
   nginx in front of two workers; a viewport of ``--viewport`` tiles requested once (misses),
   then again and again by a closed loop of 16 clients for ``--seconds``: tiles per second
   and p99 of the hits.
3. **metrics overhead**: ``benchmarks/metrics_overhead.py``'s paired run (``--rounds`` of
   ``--requests`` distinct tiles, each from a worker with ``TILER_METRICS=true`` and one with
   ``false``, one right after the other; target < 2 %).

Run: ``python benchmarks/throughput.py`` (about 6 minutes; ``--seconds`` and ``--rounds``
shorten it). Needs ``taskset`` (util-linux) and nginx for step 2 (skipped without it).
Other processes on the machine skew every figure: the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import support_path  # noqa: F401 (tests/ on sys.path: the support package)
from load import Sample, closed_loop, fetch, pct, tile_paths
from support.net import free_port
from support.nginx import NGINX, nginx, stop

ROOT = Path(__file__).resolve().parents[1]

LOG = Path(tempfile.gettempdir()) / "tiler-throughput-server.log"


def serve(workers: int, cpus: str | None, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """``tiler serve --workers N`` (pinned to ``cpus`` with taskset), once it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "tiler.cli", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    full = {**os.environ, "TILER_TILE_CACHE_BYTES": "0", **env}
    full.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with LOG.open("ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=log, stderr=log)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server did not start; see {LOG}")


def distinct(paths: list[str], n: int) -> list[str]:
    """``n`` distinct URLs cycling over ``paths`` (``max`` differs per request)."""
    return [paths[i % len(paths)].replace("max=4500", f"max={4500 + i}") for i in range(n)]


def limit_of(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
        return int(json.load(r)["load"]["limit"])


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def row(name: str, sample: Sample, seconds: float) -> dict[str, object]:
    ok = sample.latencies(200)
    out = {
        "run": name,
        "tiles/s": round(len(ok) / seconds, 2),
        "200": len(ok),
        "p50 ms": round(pct(ok, 0.5) * 1000),
        "p99 ms": round(pct(ok, 0.99) * 1000),
        "other": sorted({s for s, _ in sample.answers} - {200}),
        "timeouts": sample.timeouts,
        "errors": len(sample.errors),
        "load average": loadavg(),
    }
    print(json.dumps(out), flush=True)
    return out


def scaling(name: str, workers: int, cpus: str | None, threads: int, seconds: float) -> dict:
    proc, port = serve(workers, cpus, {"TILER_READ_THREADS": str(threads)})
    try:
        clients = 2 * limit_of(port) * workers
        paths = distinct(tile_paths(port), 100_000)
        asyncio.run(closed_loop(port, paths, 0, clients, 5, 60))  # warm-up
        sample, _ = asyncio.run(closed_loop(port, paths, 50_000, clients, seconds, 60))
        return row(f"{name} ({clients} clients)", sample, seconds)
    finally:
        stop(proc)


def through_nginx(viewport: int, seconds: float) -> dict | None:
    if NGINX is None:
        print("nginx not installed: step 2 skipped")
        return None
    proc, port = serve(2, None, {"TILER_READ_THREADS": "1"})
    prefix = Path(tempfile.mkdtemp(prefix="tiler-bench-nginx-"))
    try:
        proxy, proxy_port = nginx(prefix, port)
        try:
            view = tile_paths(port)[:viewport]
            cold = Sample()
            started = time.perf_counter()
            asyncio.run(sequential(proxy_port, view, cold))  # fills the cache, no 503
            row(
                "nginx: the viewport once, one by one (misses)", cold, time.perf_counter() - started
            )
            sample, _ = asyncio.run(closed_loop(proxy_port, view, 0, 16, seconds, 60))
            return row(
                f"nginx: the same viewport again ({viewport} tiles, 16 clients)", sample, seconds
            )
        finally:
            stop(proxy)
    finally:
        stop(proc)
        shutil.rmtree(prefix, ignore_errors=True)


async def sequential(port: int, paths: list[str], sample: Sample) -> None:
    """One request after the other."""
    for path in paths:
        await fetch(port, path, 60, sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40, help="seconds per measured loop")
    parser.add_argument("--viewport", type=int, default=24, help="tiles of the nginx viewport")
    parser.add_argument("--rounds", type=int, default=3, help="metrics on/off rounds")
    parser.add_argument("--requests", type=int, default=60, help="tiles per metrics round")
    args = parser.parse_args()
    print(f"load average before: {loadavg()}; cores: {os.cpu_count()}; server log: {LOG}")
    one = scaling("1 worker pinned to core 0", 1, "0", 1, args.seconds)
    two = scaling("2 workers on cores 0,1", 2, "0,1", 1, args.seconds)
    scaling("1 worker unpinned, 2 read threads", 1, None, 2, args.seconds)
    ratio = float(two["tiles/s"]) / max(float(one["tiles/s"]), 1e-9)  # type: ignore[arg-type]
    print(json.dumps({"2 workers / 1 pinned worker": round(ratio, 2), "target": ">= 1.8"}))
    through_nginx(args.viewport, args.seconds)
    from metrics_overhead import paired  # it imports this module's server helpers

    paired(args.rounds, args.requests, warmup=5)
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
