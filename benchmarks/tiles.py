"""Tile benchmark: this server's exact quality mosaic vs stock titiler (lastbandhigh).

Serves the same tiles of the same synthetic Sentinel-2-like collection (benchmarks/generate.py)
from two local servers on 127.0.0.1, each in its own process (own GDAL block cache):

- ours: ``tiler.app.create_app(Settings(collections=[collection.json], read_threads=T,
  tile_cache_bytes=0))``, ``/collections/{id}/tiles/WebMercatorQuad/{z}/{x}/{y}.png
  ?quality=-MSK_CLDPRB&bands=B04,B03,B02&min=0&max=4500``;
- stock: titiler.mosaic's ``MosaicTilerFactory`` with a minimal ``BaseBackend`` and rio-tiler's
  ``STACReader`` (benchmarks/stock.py), ``MOSAIC_CONCURRENCY=T``, ``RIO_TILER_MAX_THREADS=T``,
  ``/mosaic/tiles/WebMercatorQuad/{z}/{x}/{y}.png?assets=B04&assets=B03&assets=B02
  &assets=MSK_CLDPRB&expression=b1;b2;b3;-b4&pixel_selection=lastbandhigh&rescale=0,4500``.

Both get the GDAL settings of ``tiler.engine.io.GDAL_DEFAULTS``. After a warm-up round (other tiles
of the same zooms), every tile is requested ``--repeat`` times, alternately (ours, stock, ours,
stock ...), and the wall-clock time of each request is measured by the HTTP client. Then:

- the floor: the time to read, with ``T`` threads in this process, the quality and output bands
  of only the items that win a pixel of the tile (found from our ``_date`` band), each file
  opened per read (as stock does), and with the files kept open (GDAL block cache reused);
- exactness: for a few tiles, our ``.npy`` equals the naive oracle (tests/support/oracle.py) bit
  for bit; and how many pixels stock titiler's output differs from it;
- memory: one tile of collections where 8, 16, 32, 64 hazy scenes cover the same tiles (no
  early exit possible), each in a fresh process: the peak of Python/numpy allocations
  (tracemalloc) and the peak RSS growth during the request, ours vs stock vs the naive oracle.

Run: ``python benchmarks/tiles.py`` (24 scenes, 40 tiles z11-z14, 3 repeats, threads =
the package's ``read_threads`` default; about 6 minutes on 2 CPUs) or ``python
benchmarks/tiles.py --quick`` (smoke run: 4 tiles, 1 repeat, < 1 minute once the data exist).
Data are generated on first use (1-2.5 minutes) and cached under benchmarks/data/.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import random
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import generate
import httpx
import morecantile
import numpy
import support_path  # noqa: F401 (tests/ on sys.path)
from morecantile import Tile, TileMatrixSet
from stock import STOCK_QUERY
from support import oracle

HERE = Path(__file__).resolve().parent
TMS_ID = "WebMercatorQuad"
QUALITY_BAND = "MSK_CLDPRB"
BANDS = ("B04", "B03", "B02")
OURS_QUERY = "quality=-MSK_CLDPRB&bands=B04,B03,B02"
VIS = {"ours": "&min=0&max=4500", "stock": "&rescale=0,4500"}
IMPLS = ("ours", "stock")
SERVER_LIFETIME = 1800.0  # s: a server stops by itself after this, or when the runner dies


def tms() -> TileMatrixSet:
    """The tile matrix set of every request."""
    return morecantile.tms.get(TMS_ID)


# ----------------------------------------------------------------------------- servers


def gdal_env() -> None:
    """The server's GDAL settings (``tiler.engine.io.GDAL_DEFAULTS``), unless set already."""
    from tiler.engine.io import GDAL_DEFAULTS

    for key, value in GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)


def thread_env(threads: int) -> dict[str, str]:
    """Environment of a server or probe process with ``threads`` read threads."""
    env = dict(os.environ)
    env["MOSAIC_CONCURRENCY"] = str(threads)  # titiler.mosaic: items read at once
    env["RIO_TILER_MAX_THREADS"] = str(threads)  # rio-tiler: assets of one item at once
    env["TILER_READ_THREADS"] = str(threads)
    return env


def build_app(which: str, collection: Path, threads: int) -> Any:
    """The ASGI app of ``ours`` or ``stock`` (GDAL settings applied)."""
    warnings.filterwarnings("ignore")  # rio-tiler warns on raster:bands without statistics
    gdal_env()
    if which == "ours":
        from tiler.app import create_app
        from tiler.settings import Settings

        settings = Settings(collections=[collection], read_threads=threads, tile_cache_bytes=0)
        return create_app(settings)
    from stock import create_stock_app

    return create_stock_app(collection)


def serve(which: str, collection: Path, threads: int) -> None:
    """Child process: serve on a free loopback port, print it, stop with the parent."""
    import logging

    import uvicorn

    logging.basicConfig(level=logging.WARNING)
    app = build_app(which, collection, threads)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    print(sock.getsockname()[1], flush=True)
    parent, started = os.getppid(), time.monotonic()

    def watchdog() -> None:
        while os.getppid() == parent and time.monotonic() - started < SERVER_LIFETIME:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class Server:
    """A server process started by the runner."""

    which: str
    proc: subprocess.Popen[str]
    url: str
    log: Path

    def peak_rss_mb(self) -> float:
        """Peak resident memory (VmHWM) of the server process so far."""
        return _status_mb(self.proc.pid, "VmHWM")


def _status_mb(pid: int | str, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@contextmanager
def servers(collection: Path, threads: int, logdir: Path) -> Iterator[dict[str, Server]]:
    """Start ours and stock; stop them on exit."""
    started: dict[str, Server] = {}
    try:
        for which in IMPLS:
            log = logdir / f"{which}.log"
            cmd = [sys.executable, __file__, "--serve", which, "--collection", str(collection)]
            cmd += ["--threads", str(threads)]
            with log.open("w") as err:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=thread_env(threads)
                )
            port = _read_line(proc, timeout=120.0)
            if not port.strip().isdigit():
                proc.kill()
                raise RuntimeError(f"{which} server did not start: {log.read_text()[-2000:]}")
            started[which] = Server(which, proc, f"http://127.0.0.1:{port.strip()}", log)
        yield started
    finally:
        for s in started.values():
            s.proc.terminate()
        for s in started.values():
            try:
                s.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                s.proc.kill()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        return ""
    return proc.stdout.readline()


# ----------------------------------------------------------------------------- tiles


def tile_url(which: str, tile: Tile, fmt: str = "png", extra: str = "") -> str:
    """Path and query of a tile request."""
    z, x, y = tile.z, tile.x, tile.y
    if which == "ours":
        path = f"/collections/{generate.COLLECTION_ID}/tiles/{TMS_ID}/{z}/{x}/{y}.{fmt}"
        return f"{path}?{OURS_QUERY}{extra}"
    return f"/mosaic/tiles/{TMS_ID}/{z}/{x}/{y}.{fmt}?{STOCK_QUERY}{extra}"


def pick_tiles(
    bounds: Sequence[float], zooms: Sequence[int], n: int, seed: int, warmup: int
) -> tuple[list[Tile], list[Tile]]:
    """``n`` tiles over ``zooms`` inside ``bounds`` (the centre one of each zoom first, then
    random ones with ``seed``; what a low zoom lacks goes to the next zoom), and ``warmup``
    other tiles (highest zoom first) to warm up."""
    rng = random.Random(seed)
    w, s, e, n_ = bounds
    cx, cy = (w + e) / 2, (s + n_) / 2
    per_zoom = [n // len(zooms) + (1 if i < n % len(zooms) else 0) for i in range(len(zooms))]
    chosen: list[Tile] = []
    spare: dict[int, list[Tile]] = {}
    carry = 0
    for z, share in zip(zooms, per_zoom, strict=True):
        count = share + carry
        touching = list(tms().tiles(w, s, e, n_, [z]))
        inside = [t for t in touching if _contains(bounds, tms().bounds(t))]
        if len(inside) < count + 1:  # low zooms: tiles whose centre is inside
            inside += [t for t in touching if t not in inside and _contains(bounds, _centre(t))]
        centre = tms().tile(cx, cy, z)
        rest = [t for t in inside if t != centre]
        rng.shuffle(rest)
        picked = [centre, *rest][:count]
        carry = count - len(picked)
        chosen += picked
        spare[z] = [t for t in rest + touching if t not in picked]
    warm = [spare[z][0] for z in sorted(zooms, reverse=True) if spare[z]]
    return chosen, warm[:warmup]


def _contains(outer: Sequence[float], inner: Sequence[float]) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def _centre(tile: Tile) -> tuple[float, float, float, float]:
    b = tms().bounds(tile)
    x, y = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return (x, y, x, y)


@dataclass
class Sample:
    """One timed tile request."""

    which: str
    tile: Tile
    rep: int
    ms: float
    status: int
    headers: dict[str, str]

    def timing(self, name: str) -> float | None:
        """A Server-Timing entry in ms."""
        for part in self.headers.get("server-timing", "").split(","):
            key, _, dur = part.strip().partition(";dur=")
            if key == name and dur:
                return float(dur)
        return None

    def count(self, header: str) -> int | None:
        """An integer header."""
        value = self.headers.get(header)
        return int(value) if value is not None and value.isdigit() else None


def fetch(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    """GET ``url``; wall-clock milliseconds including the body."""
    t = time.perf_counter()
    r = client.get(url)
    r.read()
    return (time.perf_counter() - t) * 1000, r


def run_latency(
    urls: dict[str, str], tiles: Sequence[Tile], warm: Sequence[Tile], repeat: int
) -> list[Sample]:
    """Warm up, then request every tile ``repeat`` times, alternating ours and stock."""
    clients = {w: httpx.Client(base_url=u, timeout=300.0) for w, u in urls.items()}
    samples: list[Sample] = []
    try:
        for tile in warm:
            for which in IMPLS:
                fetch(clients[which], tile_url(which, tile, extra=VIS[which]))
        for rep in range(repeat):
            for tile in tiles:
                for which in IMPLS:
                    ms, r = fetch(clients[which], tile_url(which, tile, extra=VIS[which]))
                    headers = {k.lower(): v for k, v in r.headers.items()}
                    samples.append(Sample(which, tile, rep, ms, r.status_code, headers))
    finally:
        for c in clients.values():
            c.close()
    return samples


# ----------------------------------------------------------------------------- floor, exactness


def winners(url: str, tile: Tile, items: Sequence[oracle.StacItem]) -> list[oracle.StacItem]:
    """The items that win a pixel of the tile on our server (from its ``_date`` band)."""
    path = f"/collections/{generate.COLLECTION_ID}/tiles/{TMS_ID}/{tile.z}/{tile.x}/{tile.y}.npy"
    r = httpx.get(f"{url}{path}?quality=-MSK_CLDPRB&bands=_date", timeout=300.0)
    r.raise_for_status()
    arr = numpy.load(io.BytesIO(r.content))
    days = numpy.unique(arr[0][arr[-1] != 0])
    return [it for it in items if numpy.isclose(days, it.days, rtol=0, atol=1e-7).any()]


@dataclass
class Floor:
    """Floor of one tile: reads of the winners only."""

    used: int
    open_ms: list[float] = field(default_factory=list)
    kept_ms: list[float] = field(default_factory=list)


def run_floor(
    url: str,
    tiles: Sequence[Tile],
    items: Sequence[oracle.StacItem],
    repeat: int,
    threads: int,
) -> dict[Tile, Floor]:
    """For each tile, time reading the quality and output bands of the winners only."""
    needed = (QUALITY_BAND, *BANDS)
    out: dict[Tile, Floor] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for tile in tiles:
            used = winners(url, tile, items)
            floor = Floor(len(used))
            for _ in range(repeat):
                floor.open_ms.append(oracle.read_floor(used, needed, tms(), tile, pool))
            hrefs = [it.hrefs[b] for it in used for b in needed]
            with oracle.open_datasets(hrefs) as datasets:
                for _ in range(repeat + 1):  # the first read fills the block cache
                    ms = oracle.read_floor(used, needed, tms(), tile, pool, datasets)
                    floor.kept_ms.append(ms)
                floor.kept_ms = floor.kept_ms[1:]
            out[tile] = floor
    return out


@dataclass
class Exactness:
    """One tile compared with the oracle."""

    tile: Tile
    items: int
    ours_equal: bool
    ours_detail: str
    stock_diff: int
    stock_detail: str
    pixels: int


def _npy(client: httpx.Client, url: str) -> numpy.ndarray:
    r = client.get(url)
    r.raise_for_status()
    return numpy.load(io.BytesIO(r.content))


def run_exactness(
    urls: dict[str, str], tiles: Sequence[Tile], items: Sequence[oracle.StacItem]
) -> list[Exactness]:
    """Our .npy vs the naive oracle (bit for bit) and stock's .npy vs the oracle."""
    out = []
    with httpx.Client(timeout=300.0) as client:
        for tile in tiles:
            ref = oracle.mosaic_tile(items, tms(), tile, QUALITY_BAND, BANDS)
            ref_valid = ~numpy.ma.getmaskarray(ref)[0]
            ref_data = numpy.ma.getdata(ref)
            ours = _npy(client, urls["ours"] + tile_url("ours", tile, "npy"))
            ours_valid = ours[-1] != 0
            same_mask = bool((ours_valid == ref_valid).all())
            same_data = ours[:-1].dtype == ref_data.dtype and bool((ours[:-1] == ref_data).all())
            detail = (
                f"dtype {ours[:-1].dtype}, mask differs at {int((ours_valid != ref_valid).sum())}"
                f" px, values differ at {int((ours[:-1] != ref_data).any(axis=0).sum())} px"
            )
            st = _npy(client, urls["stock"] + tile_url("stock", tile, "npy"))
            st_valid = st[-1] != 0
            both = st_valid & ref_valid
            value_diff = both & (st[:-1].astype("int64") != ref_data.astype("int64")).any(axis=0)
            filled = st_valid & ~ref_valid  # stock shows a pixel the mosaic masks
            dropped = ~st_valid & ref_valid  # stock masks a pixel the mosaic has
            n_overlap = len(oracle.overlapping(items, tms(), tile))
            out.append(
                Exactness(
                    tile=tile,
                    items=n_overlap,
                    ours_equal=same_mask and same_data,
                    ours_detail=detail,
                    stock_diff=int((value_diff | filled | dropped).sum()),
                    stock_detail=(
                        f"other item's values {int(value_diff.sum())}, filled where the "
                        f"mosaic is masked {int(filled.sum())}, masked where it is not "
                        f"{int(dropped.sum())}"
                    ),
                    pixels=int(ref_valid.size),
                )
            )
    return out


# ----------------------------------------------------------------------------- memory


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def probe(which: str, collection: Path, tile: Tile, warm: Tile, threads: int) -> dict[str, Any]:
    """Child process: memory of one tile request (ours, stock or the naive oracle)."""
    from fastapi.testclient import TestClient

    warnings.filterwarnings("ignore")
    gdal_env()
    items = oracle.load_items(collection)
    result: dict[str, Any] = {"items": len(oracle.overlapping(items, tms(), tile))}
    if which == "naive":

        def request(t: Tile) -> dict[str, str]:
            oracle.mosaic_tile(items, tms(), t, QUALITY_BAND, BANDS)
            return {}
    else:
        client = TestClient(build_app(which, collection, threads))

        def request(t: Tile) -> dict[str, str]:
            r = client.get(tile_url(which, t, extra=VIS[which]))
            r.raise_for_status()
            return {k.lower(): v for k, v in r.headers.items()}

    request(warm)  # imports, pools, GDAL drivers; not the measured tile's blocks
    gc.collect()
    exact_peak = _reset_peak_rss()
    rss0 = _status_mb("self", "VmRSS")
    tracemalloc.start()
    t = time.perf_counter()
    headers = request(tile)
    result["ms"] = (time.perf_counter() - t) * 1000
    result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    result["rss_growth_mb"] = _status_mb("self", "VmHWM") - rss0 if exact_peak else float("nan")
    result["rss_mb"] = _status_mb("self", "VmRSS")
    for h in ("x-items-considered", "x-items-read", "x-items-used"):
        if h in headers:
            result[h] = int(headers[h])
    return result


def run_memory(paths: dict[int, Path], threads: int) -> dict[int, dict[str, dict[str, Any]]]:
    """Memory of one tile as items per tile grow, each measurement in a fresh process."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for count, path in sorted(paths.items()):
        items = oracle.load_items(path)
        w = min(it.bbox[0] for it in items)
        s = min(it.bbox[1] for it in items)
        e = max(it.bbox[2] for it in items)
        n = max(it.bbox[3] for it in items)
        tile = tms().tile((w + e) / 2, (s + n) / 2, 13)
        warm = Tile(tile.x + 1, tile.y, tile.z)
        out[count] = {}
        for which in ("ours", "stock", "naive"):
            cmd = [sys.executable, __file__, "--probe", which, "--collection", str(path)]
            cmd += [
                "--tile",
                f"{tile.z}/{tile.x}/{tile.y}",
                "--warm",
                f"{warm.z}/{warm.x}/{warm.y}",
            ]
            cmd += ["--threads", str(threads)]
            done = subprocess.run(
                cmd, capture_output=True, text=True, env=thread_env(threads), timeout=600
            )
            if done.returncode:
                raise RuntimeError(f"memory probe {which} failed: {done.stderr[-2000:]}")
            out[count][which] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# ----------------------------------------------------------------------------- report


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]


def _mean(values: Sequence[float | None]) -> float:
    v = [x for x in values if x is not None]
    return sum(v) / len(v) if v else float("nan")


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report_latency(
    samples: Sequence[Sample],
    floors: dict[Tile, Floor],
    zooms: Sequence[int],
    covered: set[Tile],
) -> str:
    """Per zoom and overall: latency of each, ratio, items, floor, Server-Timing; and the
    tiles where ours did not stop early (``covered``: tiles inside the items' footprints)."""
    rows = [
        [
            "zoom",
            "tiles",
            "ours med",
            "ours p95",
            "stock med",
            "stock p95",
            "stock/ours",
            "1st req ratio",
            "items cons/read/used",
            "early exit",
            "stock items",
            "floor open",
            "floor kept",
            "ours/floor",
        ]
    ]
    groups: list[tuple[str, list[int]]] = [(f"z{z}", [z]) for z in zooms] + [("all", list(zooms))]
    for name, zs in groups:
        sel = [s for s in samples if s.tile.z in zs and s.status == 200]
        ours = [s for s in sel if s.which == "ours"]
        stock = [s for s in sel if s.which == "stock"]
        tiles_ = {s.tile for s in ours}
        first_o = [s.ms for s in ours if s.rep == 0]
        first_s = [s.ms for s in stock if s.rep == 0]
        om, sm = _median([s.ms for s in ours]), _median([s.ms for s in stock])
        fl = [floors[t] for t in tiles_ if t in floors]
        fo = _median([_median(f.open_ms) for f in fl])
        fk = _median([_median(f.kept_ms) for f in fl])
        early = [s.headers.get("x-early-exit") == "1" for s in ours]
        rows.append(
            [
                name,
                str(len(tiles_)),
                f"{om:.0f}",
                f"{_p95([s.ms for s in ours]):.0f}",
                f"{sm:.0f}",
                f"{_p95([s.ms for s in stock]):.0f}",
                f"{sm / om:.1f}x",
                f"{_median(first_s) / _median(first_o):.1f}x",
                f"{_mean([s.count('x-items-considered') for s in ours]):.1f}/"
                f"{_mean([s.count('x-items-read') for s in ours]):.1f}/"
                f"{_mean([s.count('x-items-used') for s in ours]):.1f}",
                f"{100 * sum(early) / max(len(early), 1):.0f}%",
                f"{_mean([len(s.headers.get('x-assets', '').split(',')) for s in stock]):.1f}",
                f"{fo:.0f}",
                f"{fk:.0f}",
                f"{om / fo:.1f}x",
            ]
        )
    ours_all = [s for s in samples if s.which == "ours" and s.status == 200]
    timing = ", ".join(
        f"{k} {_median([v for s in ours_all if (v := s.timing(k)) is not None]):.0f}"
        for k in ("search", "quality", "bands")
    )
    rest = _median(
        [s.ms - sum(s.timing(k) or 0 for k in ("search", "quality", "bands")) for s in ours_all]
    )
    stock_all = [s for s in samples if s.which == "stock" and s.status == 200]
    st_timing = ", ".join(
        f"{k} {_median([v for s in stock_all if (v := s.timing(k)) is not None]):.0f}"
        for k in ("search", "mosaicking")
    )
    errors = [s for s in samples if s.status != 200]
    text = _table(rows)
    text += f"\n\nours Server-Timing medians (ms): {timing}; render + HTTP {rest:.0f}"
    text += f"\nstock Server-Timing medians (ms): {st_timing}"
    no_exit = {s.tile for s in ours_all if s.headers.get("x-early-exit") == "0"}
    if no_exit:
        slow = _median([s.ms for s in ours_all if s.tile in no_exit])
        fast = _median([s.ms for s in ours_all if s.tile not in no_exit])
        outside = len(no_exit - covered)
        text += (
            f"\nours without early exit: {len(no_exit)} of {len({s.tile for s in ours_all})} "
            f"tiles ({outside} of them reach outside every item's footprint), median "
            f"{slow:.0f} ms vs {fast:.0f} ms with early exit"
        )
    if errors:
        e = errors[0]
        text += f"\nERRORS: {len(errors)} requests failed, e.g. {e.which} {e.tile} {e.status}"
    return text


def report_memory(mem: dict[int, dict[str, dict[str, Any]]]) -> str:
    """Memory of one tile per items-per-tile count."""
    rows = [
        [
            "items/tile",
            "ours read/used",
            "ours ms",
            "stock ms",
            "ours py peak MB",
            "stock py peak MB",
            "naive py peak MB",
            "ours RSS+ MB",
            "stock RSS+ MB",
            "naive RSS+ MB",
        ]
    ]
    for _, r in sorted(mem.items()):
        o, s, n = r["ours"], r["stock"], r["naive"]
        rows.append(
            [
                str(o["items"]),
                f"{o.get('x-items-read', '?')}/{o.get('x-items-used', '?')}",
                f"{o['ms']:.0f}",
                f"{s['ms']:.0f}",
                f"{o['traced_peak_mb']:.1f}",
                f"{s['traced_peak_mb']:.1f}",
                f"{n['traced_peak_mb']:.1f}",
                f"{o['rss_growth_mb']:.0f}",
                f"{s['rss_growth_mb']:.0f}",
                f"{n['rss_growth_mb']:.0f}",
            ]
        )
    return _table(rows)


def report_exactness(results: Sequence[Exactness]) -> str:
    """Exactness lines."""
    lines = []
    for r in results:
        t = r.tile
        lines.append(
            f"  {t.z}/{t.x}/{t.y} ({r.items} items): ours {'==' if r.ours_equal else '!='} oracle"
            f"{'' if r.ours_equal else ' (' + r.ours_detail + ')'}; stock differs at "
            f"{r.stock_diff} of {r.pixels} px ({100 * r.stock_diff / r.pixels:.2f} %: "
            f"{r.stock_detail})"
        )
    ok = all(r.ours_equal for r in results)
    return f"exact: {'yes' if ok else 'no'}\n" + "\n".join(lines)


def exactness_tiles(
    collection: Path, bounds: Sequence[float], zooms: Sequence[int], count: int
) -> list[Tile]:
    """Tiles for the oracle check: the centre tile of each zoom (highest zoom first), then
    z-max tiles that a swath edge crosses (where the 20 m quality band is valid and the 10 m
    bands are not), alternating between the two orbits' edges."""
    from shapely import union_all
    from shapely.geometry import LineString, shape

    cx, cy = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    centre = [tms().tile(cx, cy, z) for z in sorted(zooms, reverse=True)]
    edges: list[Tile] = []
    features = json.loads(collection.read_text())["features"]
    for frac in (0.5, 0.25, 0.75, 0.1, 0.9):
        lat = bounds[1] + frac * (bounds[3] - bounds[1])
        for orbit, side in (("R001", 2), ("R002", 0)):
            # the first datatake of the orbit (both tiles of it in a realistic collection)
            take = [f for f in features if f"_{orbit}_" in f["id"]]
            take = [
                f for f in take if f["properties"]["datetime"] == take[0]["properties"]["datetime"]
            ]
            if not take:
                continue
            line = LineString([(bounds[0] - 1, lat), (bounds[2] + 1, lat)])
            crossed = union_all([shape(f["geometry"]) for f in take]).intersection(line)
            if crossed.is_empty:
                continue
            x = crossed.bounds[side]
            edges.append(tms().tile(x - 1e-6 if side == 2 else x + 1e-6, lat, max(zooms)))
    chosen: list[Tile] = []
    for t in [centre[0], *edges[:1], *centre[1:], *edges[1:]]:
        if t not in chosen:
            chosen.append(t)
    return chosen[:count]


def inside_footprints(collection: Path, tiles: Sequence[Tile]) -> set[Tile]:
    """The tiles that lie inside the union of the items' footprints."""
    from shapely import union_all
    from shapely.geometry import box, shape

    features = json.loads(collection.read_text())["features"]
    union = union_all([shape(f["geometry"]) for f in features])
    return {t for t in tiles if union.contains(box(*tms().bounds(t)))}


def package_version() -> str:
    """The package's git commit, and whether tiler/ has changes not committed."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tiler"],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
        ).stdout.strip()
    except OSError:
        return "unknown (no git)"
    return f"tiler at commit {head}" + (" + uncommitted changes in tiler/" if dirty else "")


# ----------------------------------------------------------------------------- main


def _tile(text: str) -> Tile:
    z, x, y = (int(v) for v in text.split("/"))
    return Tile(x, y, z)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(
        description="Tile latency, exactness and memory: this server vs stock titiler."
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 4 tiles, 1 repeat")
    ap.add_argument("--scenes", type=int, default=24, help="scenes in the collection (<= 64)")
    ap.add_argument("--size", type=int, default=4096, help="pixels per side (10 m)")
    ap.add_argument(
        "--realistic",
        action="store_true",
        help="issue 19's collection: datatakes of two tiles with equal datetimes (generate.py)",
    )
    ap.add_argument("--tiles", type=int, default=40, help="tiles (spread over the zooms)")
    ap.add_argument("--zooms", default="11,12,13,14", help="zoom levels")
    ap.add_argument("--repeat", type=int, default=3, help="requests per tile and server")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="read threads of both servers (default: the package's read_threads default)",
    )
    ap.add_argument("--warmup", type=int, default=4, help="warm-up tiles (one per zoom)")
    ap.add_argument(
        "--exact-tiles",
        type=int,
        default=8,
        help="tiles checked against the oracle (centre tiles, then z14 tiles on swath edges)",
    )
    ap.add_argument("--memory", default="8,16,32,64", help="items per tile ('' skips)")
    ap.add_argument("--seed", type=int, default=20210701)
    ap.add_argument("--dir", type=Path, default=generate.DEFAULT_DIR, help="data cache")
    # internal: child processes
    ap.add_argument("--serve", choices=IMPLS, help=argparse.SUPPRESS)
    ap.add_argument("--probe", choices=(*IMPLS, "naive"), help=argparse.SUPPRESS)
    ap.add_argument("--collection", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--tile", type=_tile, help=argparse.SUPPRESS)
    ap.add_argument("--warm", type=_tile, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads is None:
        from tiler.settings import Settings

        args.threads = Settings().read_threads
    if args.quick:
        args.tiles, args.repeat, args.exact_tiles, args.warmup = 4, 1, 2, 1
        args.memory = "8,32"
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark (or a child process's part of it)."""
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.collection, args.threads)
        return
    if args.probe:
        result = probe(args.probe, args.collection, args.tile, args.warm, args.threads)
        print(json.dumps(result))
        return

    t_start = time.perf_counter()
    gdal_env()
    zooms = [int(z) for z in args.zooms.split(",")]
    phases: dict[str, float] = {}
    t = time.perf_counter()
    collection = generate.generate_scenes(
        args.dir, args.scenes, args.size, args.seed, realistic=args.realistic
    )
    counts = [int(c) for c in args.memory.split(",") if c]
    stack = generate.generate_stack(args.dir, counts, seed=args.seed) if counts else {}
    phases["data"] = time.perf_counter() - t
    items = oracle.load_items(collection)
    bounds = (
        min(it.bbox[0] for it in items),
        min(it.bbox[1] for it in items),
        max(it.bbox[2] for it in items),
        max(it.bbox[3] for it in items),
    )
    tiles, warm = pick_tiles(bounds, zooms, args.tiles, args.seed, args.warmup)
    exact_tiles = exactness_tiles(collection, bounds, zooms, args.exact_tiles)
    info = generate.describe(collection)
    print(f"package: {package_version()}")
    print(
        f"collection: {collection}"
        f" ({info['items']} items, {info['clear (<5 %)']} nearly clear,"
        f" {info['full (>99 %)']} fully cloudy, {info['equal datetimes']} sharing a datetime,"
        f" {info['files']} COGs, {info['MB']} MB)"
    )
    print(
        f"tiles: {len(tiles)} over z{zooms[0]}-z{zooms[-1]}, {args.repeat} requests each per "
        f"server, alternating, after {len(warm)} warm-up tiles; threads {args.threads}; "
        f"CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
    )
    with (
        tempfile.TemporaryDirectory() as logdir,
        servers(collection, args.threads, Path(logdir)) as srv,
    ):
        urls = {w: s.url for w, s in srv.items()}
        t = time.perf_counter()
        samples = run_latency(urls, tiles, warm, args.repeat)
        phases["latency"] = time.perf_counter() - t
        t = time.perf_counter()
        floors = run_floor(urls["ours"], tiles, items, args.repeat, args.threads)
        phases["floor"] = time.perf_counter() - t
        t = time.perf_counter()
        exact = run_exactness(urls, exact_tiles, items)
        phases["exactness"] = time.perf_counter() - t
        peaks = {w: s.peak_rss_mb() for w, s in srv.items()}
    t = time.perf_counter()
    mem = run_memory(stack, args.threads) if stack else {}
    phases["memory"] = time.perf_counter() - t

    print()
    print("latency (ms, wall clock per request; floor = reads of the winning items only)")
    print(report_latency(samples, floors, zooms, inside_footprints(collection, tiles)))
    print()
    print(report_exactness(exact))
    print()
    runner = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS: ours server {peaks['ours']:.0f} MB, stock server {peaks['stock']:.0f} MB, "
        f"runner {runner:.0f} MB"
    )
    if mem:
        print()
        print(
            "memory of one 256 px tile (z13) as items per tile grow (hazy scenes: no early exit),"
            " each in a fresh process;\npy peak = tracemalloc peak during the request (numpy and"
            " Python objects), RSS+ = peak RSS growth (also GDAL's block cache, <= GDAL_CACHEMAX"
            f" = {os.environ.get('GDAL_CACHEMAX')} MB):"
        )
        print(report_memory(mem))
    o = [s.ms for s in samples if s.which == "ours"]
    st = [s.ms for s in samples if s.which == "stock"]
    print()
    total = time.perf_counter() - t_start
    took = ", ".join(f"{k} {v:.0f}" for k, v in phases.items())
    print(
        f"summary: median ours {_median(o):.0f} ms, stock {_median(st):.0f} ms, "
        f"stock/ours {_median(st) / _median(o):.1f}x; run {total:.0f} s ({took})"
    )
    check_exact(exact)


def check_exact(results: Sequence[Exactness]) -> None:
    """Exit non-zero when ours differs from the oracle (CI runs the --quick runs)."""
    if not all(r.ours_equal for r in results):
        raise SystemExit("ours differs from the naive oracle")


if __name__ == "__main__":
    main()
