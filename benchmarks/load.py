"""Load check: overload degrades gracefully, and memory stays flat over many requests.

Starts ``uvicorn tiler.app:serve_app --factory`` on 127.0.0.1 (the built-in demo, 13 items;
the rendered-tile cache off, so every admitted tile is computed) and drives it from this
process with a small asyncio HTTP/1.1 client (one connection per request, ``Connection:
close``), over demo tiles z11-z14 in a shuffled order, best and worst pixel:

1. **sustainable rate**: a closed loop of ``limit`` connections (the server's
   ``TILER_MAX_IN_FLIGHT``, default 2 x read threads) for ``--calibrate`` seconds: the rate R
   it serves.
2. **overload**: an open loop at ``--factor`` x R (default 4) for ``--duration`` seconds,
   requests sent on schedule whatever the answers: latency of admitted requests (200) and of
   refused ones (503), timeouts (no answer in ``--timeout`` s) and errors.
3. **retry storm**: ``--storm`` clients (default 200) in a closed loop that retry a refused
   request at once, ignoring ``Retry-After``, for ``--storm-seconds``: the goodput (200s per
   second) as a share of the sustainable rate, the latency of the 503s, and the server's CPU
   per refusal (its CPU in the storm minus the tiles' at the sustainable phase's cost each).
   In a closed loop the 503 latency is bound by Little's law (clients / answers per second);
   ``--pin`` puts the server on core 0 and this client on core 1, so the client's own CPU
   does not take the server's.
4. **disconnects**: ``--leave-tiles`` tiles computed once (warm-up), then answered (closed
   loop of ``limit`` clients), then requested by clients that close the connection after
   ``--leave`` s (default 0.1): the server's CPU seconds for the abandoned pass as a share of
   the answered pass.
5. **memory**: a closed loop of ``limit`` connections for ``--memory`` seconds (uncached
   tiles, no 503 expected): the server's RSS sampled every 10 s; growth from the first
   sample (after a warm-up of ``--warmup`` requests) to the end, the slope per request and
   the growth extrapolated to 100,000 requests, also from the second half of the samples only
   (the GDAL block cache and the open datasets fill over the first few thousand requests: a
   plateau then has a second-half slope near 0, a leak does not).

Run: ``python benchmarks/load.py`` (about 2 + 1 + 1 + 1 + 10 minutes; ``--memory 0`` skips
step 5, ``--storm 0`` and ``--leave 0`` steps 3 and 4, ``--quick`` is a 2-minute smoke run).
Targets: admitted p99 < 2 s, 503 p99 < 50 ms, 0 timeouts; in the storm goodput >= 80 % of the
sustainable rate and 503 p99 < 50 ms; abandoned work < 30 % of the CPU of the same tiles
answered; RSS growth over 100,000 requests < 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import morecantile
import psutil
import support_path  # noqa: F401 (tests/ on sys.path)
from support.net import ServerFailed, bound_socket, port_of, stop, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
LOG = Path(tempfile.gettempdir()) / "tiler-load-server.log"  # the server's log (INFO per tile)
WMQ = morecantile.tms.get("WebMercatorQuad")


@dataclass
class Sample:
    """Answers of one phase: (status, seconds) per request; timeouts and errors."""

    answers: list[tuple[int, float]] = field(default_factory=list)
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)

    def latencies(self, status: int) -> list[float]:
        return sorted(t for s, t in self.answers if s == status)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, nearest rank; nan when empty."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


async def fetch(port: int, path: str, timeout: float, sample: Sample) -> None:
    """One GET on a new connection; its status and time go into ``sample``."""
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            data = await reader.read()
            writer.close()
    except TimeoutError:
        sample.timeouts += 1
        return
    except OSError as exc:
        sample.errors.append(repr(exc))
        return
    try:
        status = int(data[9:12])
    except ValueError:
        sample.errors.append(f"bad answer {data[:40]!r}")
        return
    sample.answers.append((status, time.perf_counter() - t0))


def tile_paths(port: int) -> list[str]:
    """Demo tiles z11-z14 over the collection, best and worst pixel, shuffled (seeded)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/collections/demo") as r:
        w, s, e, n = json.load(r)["bounds"]
    paths = []
    for t in WMQ.tiles(w, s, e, n, [11, 12, 13, 14]):
        for q in ("-MSK_CLDPRB", "MSK_CLDPRB"):
            paths.append(
                f"/collections/demo/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png"
                f"?quality={q}&bands=B4,B3,B2&min=0&max=4500"
            )
    random.Random(1).shuffle(paths)
    return paths


async def closed_loop(
    port: int, paths: list[str], start: int, connections: int, seconds: float, timeout: float
) -> tuple[Sample, int]:
    """``connections`` clients, each sending its next request when the last is answered."""
    sample = Sample()
    end = time.monotonic() + seconds
    counter = [start]

    async def client() -> None:
        while time.monotonic() < end:
            i = counter[0]
            counter[0] += 1
            await fetch(port, paths[i % len(paths)], timeout, sample)

    await asyncio.gather(*(client() for _ in range(connections)))
    return sample, counter[0]


async def retry_storm(
    port: int, paths: list[str], start: int, clients: int, seconds: float, timeout: float
) -> Sample:
    """``clients`` clients that retry a refused request at once, ignoring ``Retry-After``:
    each sends its next tile when the last one was answered 200, the same tile again after
    a 503 (a retry storm: as many refusals as the server can answer)."""
    sample = Sample()
    end = time.monotonic() + seconds
    cursor = _Cursor(start)

    async def client() -> None:
        path = paths[cursor.take() % len(paths)]
        while time.monotonic() < end:
            before = len(sample.answers)
            await fetch(port, path, timeout, sample)
            if len(sample.answers) > before and sample.answers[-1][0] == 503:
                continue
            path = paths[cursor.take() % len(paths)]

    await asyncio.gather(*(client() for _ in range(clients)))
    return sample


class _Cursor:
    """The next request's index, shared by the clients of one loop."""

    def __init__(self, start: int) -> None:
        self.at = start

    def take(self) -> int:
        self.at += 1
        return self.at - 1


async def leave_early(port: int, path: str, after: float) -> None:
    """GET ``path`` and close the connection ``after`` seconds later, unanswered or not."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    try:
        async with asyncio.timeout(after):
            await reader.read()
    except TimeoutError:
        pass
    writer.close()


def server_cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) used so far by the serving process(es)."""
    parent = psutil.Process(proc.pid)
    total = 0.0
    for p in [parent, *parent.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def disconnects(
    proc: subprocess.Popen[bytes], port: int, paths: list[str], limit: int, after: float
) -> dict[str, object]:
    """The server's CPU for tiles answered vs the same tiles abandoned after ``after`` s.

    Every tile is first computed once (warm-up: GDAL's block cache and open files are warm
    for both measured passes, the rendered-tile cache is off); then the tiles answered by a
    closed loop of ``limit`` clients, then the same tiles requested by ``limit`` clients at
    a time that close the connection ``after`` seconds after sending.
    """
    asyncio.run(_all(port, paths, limit, None))
    time.sleep(1)
    cpu0 = server_cpu(proc)
    asyncio.run(_all(port, paths, limit, None))
    time.sleep(1)
    answered = server_cpu(proc) - cpu0
    cpu0 = server_cpu(proc)
    asyncio.run(_all(port, paths, limit, after))
    time.sleep(max(2.0, 4 * after))  # abandoned work still running ends
    abandoned = server_cpu(proc) - cpu0
    row: dict[str, object] = {
        "phase": f"clients leaving after {after * 1000:.0f} ms",
        "tiles": len(paths),
        "cpu answered s": round(answered, 2),
        "cpu abandoned s": round(abandoned, 2),
        "abandoned / answered %": round(100 * abandoned / answered, 1),
    }
    print(json.dumps(row), flush=True)
    return row


async def _all(port: int, paths: list[str], clients: int, leave: float | None) -> None:
    """Every path once, ``clients`` at a time; ``leave``: close after that many seconds."""
    cursor = _Cursor(0)
    sample = Sample()

    async def client() -> None:
        while (i := cursor.take()) < len(paths):
            if leave is None:
                await fetch(port, paths[i], 60, sample)
            else:
                await leave_early(port, paths[i], leave)

    await asyncio.gather(*(client() for _ in range(clients)))


async def open_loop(
    port: int, paths: list[str], start: int, rate: float, seconds: float, timeout: float
) -> Sample:
    """Requests sent at ``rate`` per second on schedule, whatever the answers."""
    sample = Sample()
    tasks = []
    t0 = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        path = paths[(start + i) % len(paths)]
        tasks.append(asyncio.ensure_future(fetch(port, path, timeout, sample)))
    await asyncio.gather(*tasks)
    return sample


def start_server(
    workers: int, env: dict[str, str], cpus: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """uvicorn on a loopback socket bound here and handed over (``--fd``: no port race);
    ``cpus``: the server pinned to those cores (``taskset -c``)."""
    sock = bound_socket()
    port = port_of(sock)
    pin = ["taskset", "-c", cpus] if cpus else []
    cmd = [
        *pin,
        sys.executable,
        "-m",
        "uvicorn",
        "tiler.app:serve_app",
        "--factory",
        "--fd",
        str(sock.fileno()),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    log = open(LOG, "wb")  # noqa: SIM115 (the server's whole life)
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
        pass_fds=(sock.fileno(),),
    )
    sock.close()  # the server has its own copy
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, timeout=300, log=LOG)
    except ServerFailed as exc:
        stop(proc)
        raise SystemExit(f"server did not start: {exc}") from exc
    return proc, port


def server_rss(proc: subprocess.Popen[bytes]) -> float:
    """RSS in MB of the serving process(es): the workers when there are some."""
    parent = psutil.Process(proc.pid)
    children = parent.children(recursive=True)
    procs = [c for c in children if "resource_tracker" not in " ".join(c.cmdline())] or [parent]
    return sum(p.memory_info().rss for p in procs) / 2**20


def report(name: str, sample: Sample, seconds: float) -> dict[str, object]:
    ok, busy = sample.latencies(200), sample.latencies(503)
    other = sorted({s for s, _ in sample.answers} - {200, 503})
    row: dict[str, object] = {
        "phase": name,
        "requests": len(sample.answers) + sample.timeouts + len(sample.errors),
        "rate": round(len(sample.answers) / seconds, 1),
        "200": len(ok),
        "200 p50 ms": round(pct(ok, 0.5) * 1000),
        "200 p99 ms": round(pct(ok, 0.99) * 1000),
        "200 max ms": round(max(ok, default=float("nan")) * 1000),
        "503": len(busy),
        "503 p50 ms": round(pct(busy, 0.5) * 1000, 1),
        "503 p99 ms": round(pct(busy, 0.99) * 1000, 1),
        "503 max ms": round(max(busy, default=float("nan")) * 1000, 1),
        "other statuses": other,
        "timeouts": sample.timeouts,
        "errors": len(sample.errors),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--calibrate", type=float, default=120, help="seconds of step 1 (0: step 5 only)"
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds of step 2")
    parser.add_argument("--factor", type=float, default=4.0, help="overload x sustainable")
    parser.add_argument("--memory", type=float, default=600, help="seconds of step 5 (0: skip)")
    parser.add_argument("--warmup", type=int, default=500, help="requests before RSS counts")
    parser.add_argument("--timeout", type=float, default=30, help="client timeout, seconds")
    parser.add_argument("--storm", type=int, default=200, help="retrying clients (0: skip)")
    parser.add_argument("--storm-seconds", type=float, default=60, help="seconds of the storm")
    parser.add_argument(
        "--leave", type=float, default=0.1, help="clients leave after s (0: skip that phase)"
    )
    parser.add_argument("--leave-tiles", type=int, default=120, help="tiles of that phase")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="server on core 0, this client on core 1 (the client's CPU does not compete)",
    )
    parser.add_argument("--quick", action="store_true", help="20 s + 20 s + 30 s smoke run")
    args = parser.parse_args()
    if args.quick:
        args.calibrate, args.duration, args.memory, args.warmup = 20, 20, 30, 50
        args.storm_seconds, args.leave_tiles = 20, 40
    env = {"TILER_TILE_CACHE_BYTES": "0"}
    if args.pin:
        os.sched_setaffinity(0, {1})
    proc, port = start_server(args.workers, env, "0" if args.pin else None)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
            limit = int(json.load(r)["load"]["limit"]) * args.workers
        paths = tile_paths(port)
        if args.calibrate <= 0:  # memory only
            memory(proc, port, paths, limit, args)
            return
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"limit {limit} in flight, {len(paths)} distinct tiles, load average {load}")
        print(f"server log: {LOG}")
        cpu0 = server_cpu(proc)
        sample, at = asyncio.run(closed_loop(port, paths, 0, limit, args.calibrate, args.timeout))
        calibrate_cpu = server_cpu(proc) - cpu0
        rate = len(sample.latencies(200)) / args.calibrate
        report("sustainable (closed loop)", sample, args.calibrate)
        over = asyncio.run(
            open_loop(port, paths, at, args.factor * rate, args.duration, args.timeout)
        )
        report(f"open loop at {args.factor:g} x {rate:.1f}/s", over, args.duration)
        if args.storm > 0:
            cpu0 = server_cpu(proc)
            storm = asyncio.run(
                retry_storm(port, paths, at, args.storm, args.storm_seconds, args.timeout)
            )
            cpu = server_cpu(proc) - cpu0
            report(f"{args.storm} clients retrying at once", storm, args.storm_seconds)
            tiles, refusals = len(storm.latencies(200)), len(storm.latencies(503))
            # the server's CPU left after the tiles (at the sustainable phase's cost each)
            refusing = max(0.0, cpu - tiles * calibrate_cpu / max(1, len(sample.answers)))
            row = {
                "goodput / sustainable %": round(100 * tiles / args.storm_seconds / rate, 1),
                "server cpu s": round(cpu, 1),
                "server cpu per refusal us": round(1e6 * refusing / max(1, refusals)),
                "share of server cpu refusing %": round(100 * refusing / max(cpu, 1e-9), 1),
                # Little's law: a closed loop of N clients answered at rate R waits N / R
                "503 latency by Little's law ms": round(
                    1000 * args.storm / max(1e-9, len(storm.answers) / args.storm_seconds)
                ),
            }
            print(json.dumps(row), flush=True)
        if args.leave > 0:
            disconnects(proc, port, paths[: args.leave_tiles], limit, args.leave)
        if args.memory > 0:
            memory(proc, port, paths, limit, args)
    finally:
        proc.terminate()
        proc.wait(30)


def memory(
    proc: subprocess.Popen[bytes], port: int, paths: list[str], limit: int, args: argparse.Namespace
) -> None:
    done = 0
    while done < args.warmup:
        sample, done = asyncio.run(closed_loop(port, paths, done, limit, 5, args.timeout))
    first, t0, points = server_rss(proc), time.monotonic(), []
    start = done
    while time.monotonic() - t0 < args.memory:
        sample, done = asyncio.run(closed_loop(port, paths, done, limit, 10, args.timeout))
        points.append((done - start, server_rss(proc)))
        print(f"  {done - start} requests, RSS {points[-1][1]:.0f} MB", flush=True)
    n, last = points[-1]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    slope = statistics.linear_regression(xs, ys).slope if len(points) > 2 else 0.0
    # the caches (GDAL blocks, open datasets) fill over the first thousands of requests:
    # the slope of the second half tells a leak from a plateau
    half = points[len(points) // 2 :]
    late = (
        statistics.linear_regression([p[0] for p in half], [p[1] for p in half]).slope
        if len(half) > 2
        else 0.0
    )
    row = {
        "phase": "memory",
        "requests": n,
        "rss first MB": round(first),
        "rss last MB": round(last),
        "rss max MB": round(max(ys)),
        "growth %": round(100 * (last - first) / first, 1),
        "slope KB/request": round(slope * 1024, 2),
        "growth at 100k %": round(100 * slope * 100_000 / first, 1),
        "second half slope KB/request": round(late * 1024, 2),
        "second half growth at 100k %": round(100 * late * 100_000 / first, 1),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
