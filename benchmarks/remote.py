"""Remote-COG tile benchmark: ours vs stock titiler, files served over HTTP with latency.

The collection of benchmarks/tiles.py (24 Sentinel-2-like scenes, one COG per band, made by
benchmarks/generate.py and cached under benchmarks/data/) is served by ``RangeServer``
(tests/support/remote_servers.py: HTTP/1.1 on 127.0.0.1, one ``Range`` per request, ``latency``
seconds of sleep before every answer, request and byte counters) in a process of its own, so
the runner's GIL cannot slow it down; it reports its counters through a pipe. A copy of the
collection file whose hrefs are ``http://127.0.0.1:PORT/...`` is served by:

- ours: ``tiler.app.create_app(Settings(collections=[copy], read_threads=T,
  tile_cache_bytes=0))`` with nothing but the server's own GDAL defaults
  (``tiler.engine.io.GDAL_DEFAULTS``, what ``tiler.process.configure_gdal`` sets) and
  ``TILER_READ_THREADS=T``;
- stock: titiler.mosaic + rio-tiler's ``STACReader`` (benchmarks/stock.py) with
  ``MOSAIC_CONCURRENCY=T``, ``RIO_TILER_MAX_THREADS=T`` and titiler's documented GDAL settings
  for remote COGs (:data:`TITILER_GDAL`): the "Recommended Configuration for dynamic tiling" of
  https://developmentseed.org/titiler/advanced/performance_tuning/ (``CPL_VSIL_CURL_CACHE_SIZE``
  200 MB as the page says; its value 20000000 is 20 MB, a typo), ``PROJ_NETWORK=OFF`` (same
  page) and ``GDAL_INGESTED_BYTES_AT_OPEN=32768`` (titiler's docker-compose.yml).

``T`` is the package's ``read_threads`` default (the core count, at least 2) unless
``--threads`` says otherwise. For each latency (``--latency``, ms) all three processes start
fresh (cold GDAL and curl caches); a warm-up round requests other tiles of the same zooms from
both (file headers get known), then each tile is requested ``--repeat`` times, sequentially,
alternating ours and stock. Per request: the wall time at the client, and the HTTP requests
(GET and HEAD), bytes and distinct files the RangeServer answered meanwhile (sequential
requests make them attributable). At ``--exact-latency`` our ``.npy`` of a few tiles (the
centre tile per zoom, then swath-edge tiles) must equal the naive oracle (tests/support/oracle.py,
reading the local files) bit for bit; stock's differing pixels are counted too.

Run: ``python benchmarks/remote.py`` (20 tiles z11-z13, latencies 0, 20, 40, 80 ms, 1 repeat;
10-15 minutes on 2 CPUs), ``python benchmarks/remote.py --latency 40`` or ``python
benchmarks/remote.py --quick`` (smoke run: 4 tiles, 0 and 40 ms, < 2 minutes once the data
exist). Prints a markdown table (for the README) and a detail table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import generate
import httpx
import support_path  # noqa: F401 (tests/ on sys.path)
import tiles
from morecantile import Tile
from support import oracle
from support.remote_servers import RangeServer, rewrite_hrefs

HERE = Path(__file__).resolve().parent

#: titiler's documented GDAL settings for remote COGs (see the module docstring)
TITILER_GDAL = {
    "GDAL_CACHEMAX": "200",
    "CPL_VSIL_CURL_CACHE_SIZE": "200000000",
    "GDAL_BAND_BLOCK_CACHE": "HASHSET",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "5000000",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
    "PROJ_NETWORK": "OFF",
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
}
STATS = ("requests", "bytes", "heads", "full", "opens", "files")


# ----------------------------------------------------------------------------- file server


class CountingRangeServer(RangeServer):
    """``RangeServer`` that also counts HEAD requests, GETs without ``Range``, files, and
    requests that open a file (a HEAD, or a GET from byte 0: the header)."""

    def __init__(self, root: Path, latency: float = 0.0) -> None:
        super().__init__(root, latency)
        self.heads = 0
        self.full = 0
        self.opens = 0
        self.paths: set[str] = set()

    def _handler(self) -> Any:
        base = super()._handler()
        outer = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802
                with outer._lock:
                    outer.full += "Range" not in self.headers
                    outer.opens += self.headers.get("Range", "").startswith("bytes=0-")
                    outer.paths.add(self.path)
                super().do_GET()

            def do_HEAD(self) -> None:  # noqa: N802
                with outer._lock:
                    outer.heads += 1
                    outer.opens += 1
                    outer.paths.add(self.path)
                super().do_HEAD()

        return Handler

    def stats(self) -> dict[str, int]:
        """Counters so far; ``files``: distinct files asked for since the previous call."""
        with self._lock:
            out = {"requests": self.requests, "bytes": self.bytes, "heads": self.heads}
            out |= {"full": self.full, "opens": self.opens, "files": len(self.paths)}
            self.paths = set()
        return out


def run_file_server(root: Path, latency_ms: float) -> None:
    """Child process: serve ``root``, print the port, answer each stdin line with the stats."""
    with CountingRangeServer(root, latency_ms / 1000) as server:
        print(server.port, flush=True)
        for _ in sys.stdin:  # EOF (the runner closed the pipe or died): stop
            print(json.dumps(server.stats()), flush=True)


@dataclass
class FileServer:
    """The runner's handle on the RangeServer process."""

    proc: subprocess.Popen[str]
    url: str

    def stats(self) -> dict[str, int]:
        """The server's counters (``files`` since the previous call)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return json.loads(tiles._read_line(self.proc, timeout=30.0))


# ----------------------------------------------------------------------------- processes


def serve(which: str, collection: Path, threads: int) -> None:
    """Child process: ``tiles.serve``; stock without ``GDAL_DEFAULTS`` (titiler's env only)."""
    if which == "stock":
        tiles.gdal_env = lambda: None  # build_app would add our GDAL defaults to stock's
    tiles.serve(which, collection, threads)


def _start(
    cmd: list[str], env: dict[str, str], log: Path, stdin: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """Start a child that prints its port; the process and its URL."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else None,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    port = tiles._read_line(proc, timeout=120.0).strip()
    if not port.isdigit():
        proc.kill()
        raise RuntimeError(f"{log.stem} did not start: {log.read_text()[-2000:]}")
    return proc, f"http://127.0.0.1:{port}"


def server_env(which: str, threads: int) -> dict[str, str]:
    """Environment of a tile server: thread settings; stock also titiler's GDAL settings."""
    env = tiles.thread_env(threads)
    return env | TITILER_GDAL if which == "stock" else env


@contextmanager
def processes(
    collection: Path, latency_ms: float, threads: int, tmp: Path
) -> Iterator[tuple[FileServer, dict[str, str]]]:
    """The RangeServer over the collection's folder, ours and stock over an http copy."""
    procs: list[subprocess.Popen[str]] = []
    try:
        cmd = [sys.executable, __file__, "--file-server", str(collection.parent)]
        proc, url = _start(
            [*cmd, "--latency", str(latency_ms)], dict(os.environ), tmp / "files.log", True
        )
        procs.append(proc)
        files = FileServer(proc, url)
        copy = rewrite_hrefs(collection, tmp / f"collection-{latency_ms:g}ms.json", url)
        urls = {}
        for which in tiles.IMPLS:
            cmd = [sys.executable, __file__, "--serve", which, "--collection", str(copy)]
            cmd += ["--threads", str(threads)]
            proc, urls[which] = _start(cmd, server_env(which, threads), tmp / f"{which}.log")
            procs.append(proc)
        yield files, urls
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


# ----------------------------------------------------------------------------- measurement


@dataclass
class Sample:
    """One timed tile request and what the file server answered meanwhile."""

    which: str
    tile: Tile
    rep: int
    ms: float
    status: int
    io: dict[str, int]
    error: str = ""


def measure(
    files: FileServer,
    urls: dict[str, str],
    picked: Sequence[Tile],
    warm: Sequence[Tile],
    repeat: int,
) -> list[Sample]:
    """Warm up, then every tile ``repeat`` times, alternating ours and stock, sequentially."""
    clients = {w: httpx.Client(base_url=u, timeout=600.0) for w, u in urls.items()}
    samples: list[Sample] = []
    try:
        for tile in warm:
            for which in tiles.IMPLS:
                tiles.fetch(clients[which], tiles.tile_url(which, tile, extra=tiles.VIS[which]))
        for rep in range(repeat):
            for tile in picked:
                for which in tiles.IMPLS:
                    url = tiles.tile_url(which, tile, extra=tiles.VIS[which])
                    before = files.stats()
                    ms, r = tiles.fetch(clients[which], url)
                    after = files.stats()
                    io = {k: after[k] - before[k] for k in STATS if k != "files"}
                    io["files"] = after["files"]
                    error = "" if r.status_code == 200 else r.text[:300]
                    samples.append(Sample(which, tile, rep, ms, r.status_code, io, error))
    finally:
        for c in clients.values():
            c.close()
    return samples


def warm_tiles(
    bounds: Sequence[float], zooms: Sequence[int], picked: Sequence[Tile], n: int, seed: int
) -> list[Tile]:
    """``n`` tiles not in ``picked``, taken in turn from each zoom (highest first)."""
    extra, _ = tiles.pick_tiles(bounds, zooms, len(picked) + n * len(zooms), seed, 0)
    per_zoom = [[t for t in extra if t.z == z and t not in picked] for z in sorted(zooms)[::-1]]
    turns = [t for row in itertools.zip_longest(*per_zoom) for t in row if t is not None]
    return turns[:n]


# ----------------------------------------------------------------------------- report


def summary(latency: float, samples: Sequence[Sample]) -> dict[str, Any]:
    """Figures of one latency."""
    ok = [s for s in samples if s.status == 200]
    by = {w: [s for s in ok if s.which == w] for w in tiles.IMPLS}
    ours = {(s.tile, s.rep): s.ms for s in by["ours"]}
    pairs = [s.ms / ours[(s.tile, s.rep)] for s in by["stock"] if (s.tile, s.rep) in ours]
    out: dict[str, Any] = {"latency": latency, "speedup": tiles._median(pairs)}
    out["zooms"] = {}
    for z in sorted({s.tile.z for s in ok}):
        mine = [s.ms for s in by["ours"] if s.tile.z == z]
        theirs = [s.ms for s in by["stock"] if s.tile.z == z]
        ratios = [
            s.ms / ours[(s.tile, s.rep)]
            for s in by["stock"]
            if s.tile.z == z and (s.tile, s.rep) in ours
        ]
        if mine and theirs and ratios:
            out["zooms"][z] = (len(mine), tiles._median(mine), tiles._median(theirs))
            out["zooms"][z] += (tiles._median(ratios),)
    out["errors"] = {w: sum(s.which == w and s.status != 200 for s in samples) for w in by}
    failed = [s for s in samples if s.status != 200]
    if failed:
        f = failed[0]
        print(f"  {len(failed)} failed, e.g. {f.which} {f.tile}: {f.status} {f.error}")
    for w, sel in by.items():
        ms = [s.ms for s in sel]
        out[w] = {"median": tiles._median(ms), "p95": tiles._p95(ms)}
        for k in STATS:
            out[w][k] = tiles._mean([s.io[k] for s in sel])
    return out


def markdown(rows: Sequence[str]) -> str:
    """A markdown table of rows of cells separated by "|"; the first row is the header."""
    lines = ["| " + r.replace("|", " | ") + " |" for r in rows]
    return "\n".join([lines[0], "|" + "---|" * (rows[0].count("|") + 1), *lines[1:]])


def report(results: Sequence[dict[str, Any]]) -> str:
    """The README table and the detail table."""
    rows = [
        "latency|ours median|ours p95|stock median|stock p95|stock/ours (median per pair)"
        "|HTTP requests/tile ours / stock|of them data (headers known) ours / stock"
        "|MB/tile ours / stock"
    ]
    for r in results:
        o, s = r["ours"], r["stock"]
        rows.append(
            f"{r['latency']:g} ms|{o['median']:,.0f} ms|{o['p95']:,.0f} ms|{s['median']:,.0f} ms"
            f"|{s['p95']:,.0f} ms|{r['speedup']:.1f}x|{o['requests']:.1f} / {s['requests']:.1f}"
            f"|{o['requests'] - o['opens']:.1f} / {s['requests'] - s['opens']:.1f}"
            f"|{o['bytes'] / 1e6:.2f} / {s['bytes'] / 1e6:.2f}"
        )
    detail = [
        "latency|server|requests/tile|of them HEAD|header GETs|GET w/o Range|files/tile"
        "|requests/file"
        "|KB/request|failed"
    ]
    for r in results:
        for w in tiles.IMPLS:
            x = r[w]
            detail.append(
                f"{r['latency']:g} ms|{w}|{x['requests']:.1f}|{x['heads']:.1f}"
                f"|{x['opens'] - x['heads']:.1f}|{x['full']:.1f}"
                f"|{x['files']:.1f}|{x['requests'] / max(x['files'], 1e-9):.2f}"
                f"|{x['bytes'] / 1e3 / max(x['requests'], 1e-9):.0f}|{r['errors'][w]}"
            )
    zooms = ["latency|zoom|tiles|ours median|stock median|stock/ours (median per pair)"]
    for r in results:
        for z, (n, mine, theirs, ratio) in r["zooms"].items():
            zooms.append(
                f"{r['latency']:g} ms|z{z}|{n}|{mine:,.0f} ms|{theirs:,.0f} ms|{ratio:.1f}x"
            )
    note = "\n\nper tile, means (files: distinct COGs asked for):\n\n"
    by_zoom = "\n\nby zoom:\n\n" + markdown(zooms)
    return markdown(rows) + note + markdown(detail) + by_zoom


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(description="Remote-COG tiles: ours vs stock titiler.")
    ap.add_argument("--quick", action="store_true", help="4 tiles, 0 and 40 ms, 1 repeat")
    ap.add_argument("--latency", default="0,20,40,80", help="ms before each HTTP answer")
    ap.add_argument("--tiles", type=int, default=20, help="tiles (spread over the zooms)")
    ap.add_argument("--zooms", default="11,12,13", help="zoom levels")
    ap.add_argument("--repeat", type=int, default=1, help="requests per tile and server")
    ap.add_argument("--warmup", type=int, default=6, help="warm-up tiles (same zooms)")
    ap.add_argument("--threads", type=int, default=None, help="default: package read_threads")
    ap.add_argument("--exact-tiles", type=int, default=3, help="tiles checked vs the oracle")
    ap.add_argument("--exact-latency", type=float, default=None, help="default: 40 or last")
    ap.add_argument("--scenes", type=int, default=24, help="scenes in the collection")
    ap.add_argument("--size", type=int, default=4096, help="pixels per side (10 m)")
    ap.add_argument(
        "--realistic",
        action="store_true",
        help="issue 19's collection: datatakes of two tiles with equal datetimes (generate.py)",
    )
    ap.add_argument("--seed", type=int, default=20210701)
    ap.add_argument("--dir", type=Path, default=generate.DEFAULT_DIR, help="data cache")
    # internal: child processes
    ap.add_argument("--serve", choices=tiles.IMPLS, help=argparse.SUPPRESS)
    ap.add_argument("--file-server", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--collection", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:  # smoke-run values where the command line left the defaults
        quick = {"tiles": 4, "latency": "0,40", "repeat": 1, "warmup": 3, "exact_tiles": 2}
        for name, value in quick.items():
            if getattr(args, name) == ap.get_default(name):
                setattr(args, name, value)
    args.latencies = [float(v) for v in str(args.latency).split(",")]
    if args.exact_latency is None:
        args.exact_latency = 40.0 if 40.0 in args.latencies else args.latencies[-1]
    if args.threads is None:
        from tiler.settings import Settings

        args.threads = Settings().read_threads
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark (or a child process's part of it)."""
    args = parse_args(argv)
    if args.file_server:
        run_file_server(args.file_server, args.latencies[0])
        return
    if args.serve:
        serve(args.serve, args.collection, args.threads)
        return

    started = time.perf_counter()
    zooms = [int(z) for z in args.zooms.split(",")]
    collection = generate.generate_scenes(
        args.dir, args.scenes, args.size, args.seed, realistic=args.realistic
    )
    items = oracle.load_items(collection)
    bounds = (
        min(it.bbox[0] for it in items),
        min(it.bbox[1] for it in items),
        max(it.bbox[2] for it in items),
        max(it.bbox[3] for it in items),
    )
    picked, _ = tiles.pick_tiles(bounds, zooms, args.tiles, args.seed, 0)
    warm = warm_tiles(bounds, zooms, picked, args.warmup, args.seed + 1)
    exact_tiles = tiles.exactness_tiles(collection, bounds, zooms, args.exact_tiles)
    info = generate.describe(collection)
    t = args.threads
    print(f"package: {tiles.package_version()}")
    print(f"collection: {info['items']} items, {info['files']} COGs, {info['MB']} MB")
    print(
        f"tiles: {len(picked)} over z{zooms[0]}-z{zooms[-1]}, {args.repeat} request(s) each per "
        f"server, alternating, sequential, after {len(warm)} warm-up tiles; CPUs "
        f"{os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"threads: ours read_threads={t} (TILER_READ_THREADS); stock MOSAIC_CONCURRENCY={t}, "
        f"RIO_TILER_MAX_THREADS={t}"
    )
    print("stock GDAL: " + " ".join(f"{k}={v}" for k, v in TITILER_GDAL.items()))
    print("ours GDAL: the server's defaults (tiler.engine.io.GDAL_DEFAULTS)", flush=True)
    results, exact = [], []
    for latency in args.latencies:
        with (
            tempfile.TemporaryDirectory() as tmp,
            processes(collection, latency, t, Path(tmp)) as (files, urls),
        ):
            t0 = time.perf_counter()
            samples = measure(files, urls, picked, warm, args.repeat)
            results.append(summary(latency, samples))
            if latency == args.exact_latency and exact_tiles:
                exact = tiles.run_exactness(urls, exact_tiles, items)
            r = results[-1]
            print(
                f"{latency:g} ms: ours {r['ours']['median']:.0f} ms, stock "
                f"{r['stock']['median']:.0f} ms, {r['speedup']:.1f}x "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print()
    print(report(results))
    if exact:
        print(f"\nexactness at {args.exact_latency:g} ms (oracle reads the local files):")
        print(tiles.report_exactness(exact))
    print(f"\nrun {time.perf_counter() - started:.0f} s")
    tiles.check_exact(exact or [])


if __name__ == "__main__":
    main()
