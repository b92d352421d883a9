"""The PgSTAC catalogue at scale: load time, per-tile lookup, worker start and memory.

1. Generates ``--items`` Sentinel-2-like items with the generator of ``search_100k.py``
   (in a spawned process, written as newline-delimited JSON) and loads them into PgSTAC
   the way ``tiler load FILE --dsn DSN`` does (``load_collection`` reads and checks the
   file, then ``tiler.tools.load.load`` upserts it with pypgstac's Loader), in a spawned
   process (time and peak RSS). ``--tiler-load N`` loads only the first N items that way
   and the rest with pypgstac's Loader directly (insert mode).
2. Times ``PgstacCatalog.search(search, tile, limit=500)`` (search cache off) over random
   web-mercator tiles inside the data's area, for each zoom and four searches (no filter;
   a one-month datetime; CQL2 ``eo:cloud_cover < 20``; sortby ``-eo:cloud_cover``):
   p50/p95/max, items per tile, tiles over the limit (``TooManyItems`` is an answer and is
   timed), and where the time goes (``stac_search_to_where``, the item query, hydration and
   parsing, the in-memory re-selection).
3. Starts a worker in a fresh process: ``serve_app(Settings(collections=[dsn]))`` plus a
   first ``/healthz`` through starlette's ``TestClient``; RSS after the start and after 200
   lookups (the app's catalogue, search cache on as configured, then off).
4. The in-memory catalogue at ``--memory-items`` (100,000) for comparison: load time and
   RSS (``search_100k.measure_load``) and the same lookups.
5. Prints markdown tables and the command.

Run: ``python benchmarks/catalog.py [--items 1000000] [--tiles 200] [--dsn DSN] [--keep]``
(``--quick``: the smoke run of 20000 items, 10 tiles, as CI runs it).
Without ``--dsn`` a throwaway PostgreSQL 15 + PostGIS + PgSTAC cluster is started
(``tests/support/pgstac_cluster.py``); with ``--dsn`` a database that already holds the collection
with ``--items`` items is not loaded again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import queue as queues
import resource
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import search_100k
import support_path  # noqa: F401 (tests/ on sys.path)

ROOT = Path(__file__).resolve().parents[1]

COLLECTION = "s2-europe"  # the generator's collection id
LIMIT = 500  # Settings.max_items_per_tile's default
MONTH = "2021-06-01/2021-06-30"
SEARCHES = {  # label: make_search keyword arguments
    "no filter": {},
    "datetime (1 month)": {"datetime": MONTH},
    "eo:cloud_cover < 20": {"filter": "eo:cloud_cover < 20"},
    "sortby -eo:cloud_cover": {"sortby": "-eo:cloud_cover"},
}
TARGET_ZOOMS = range(10, 15)
TARGET_P50_MS = 25.0
TARGET_P95_MS = 100.0
TARGET_START_S = 5.0
TARGET_RSS_MB = 300.0


# ---------------------------------------------------------------------------------------
# helpers


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (VmHWM)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_spawned(target: Callable[..., None], *args: Any, poll: float = 1.0) -> Any:
    """``target(*args, queue)`` in a fresh (spawned) process; what it puts on the queue."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=poll)
            break
        except queues.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} failed (exit {proc.exitcode})") from None
    proc.join()
    return result


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def say(*parts: Any, sep: str = " ") -> None:
    print(*parts, sep=sep, flush=True)


# ---------------------------------------------------------------------------------------
# the data


def cells(n_items: int) -> list[tuple[str, float, float, float, float]]:
    """The generator's grid cells for ``n_items`` (as ``search_100k.make_items`` lays them)."""
    per_tile = 5 * 365 // 5  # make_items' defaults: 5 years, 5-day revisit
    return search_100k.grid(math.ceil(n_items / per_tile))


def _generate(n: int, path: str, queue: Any) -> None:
    t = time.perf_counter()
    items = search_100k.make_items(n)
    generated = time.perf_counter() - t
    tmp = Path(path + ".part")
    with tmp.open("w") as f:
        for it in items:
            f.write(json.dumps(it, separators=(",", ":")) + "\n")
    tmp.rename(path)
    queue.put((generated, time.perf_counter() - t, peak_rss_mb()))


def generate(n: int, path: Path) -> str:
    """Write ``n`` items to ``path`` (NDJSON) unless it is there; a line for the report."""
    if path.is_file():
        return f"{n:,} items: reused {path} ({path.stat().st_size / 2**30:.2f} GiB)"
    generated, total, peak = run_spawned(_generate, n, str(path))
    return (
        f"{n:,} items generated in {generated:.0f} s, written in {total - generated:.0f} s "
        f"({path.stat().st_size / 2**30:.2f} GiB NDJSON; generator peak RSS {peak:,.0f} MiB)"
    )


def split_file(path: Path, first: int, head: Path, tail: Path) -> None:
    """The first ``first`` lines of ``path`` into ``head``, the others into ``tail``."""
    with path.open() as src, head.open("w") as h, tail.open("w") as t:
        for i, line in enumerate(src):
            (h if i < first else t).write(line)


# ---------------------------------------------------------------------------------------
# loading into PgSTAC


def _tiler_load(path: str, dsn: str, queue: Any) -> None:
    import tiler.tools.load  # noqa: F401  (imports outside the timings)
    from tiler.catalog.loaders import load_collection
    from tiler.tools.load import load

    t0 = time.perf_counter()
    catalog = load_collection(path)  # what `tiler load` does first (reads and checks)
    read = time.perf_counter() - t0
    read_rss = search_100k.rss_mb()
    marks: list[tuple[int, float]] = []
    done = 0

    def progress(k: int) -> None:
        nonlocal done
        done += k
        if done % 100_000 == 0:
            marks.append((done, time.perf_counter() - t0))
            print(f"  tiler load: {done:,} items at {marks[-1][1]:.0f} s", flush=True)

    cid, count = load(Path(path), dsn, catalog, progress=progress)
    total = time.perf_counter() - t0
    queue.put((cid, count, read, total, read_rss, peak_rss_mb(), marks))


def _pypgstac_load(path: str, dsn: str, queue: Any) -> None:
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    t = time.perf_counter()
    db = PgstacDB(dsn=dsn)
    Loader(db=db).load_items(path, insert_mode=Methods.insert)
    db.close()
    queue.put((time.perf_counter() - t, peak_rss_mb()))


def count_items(dsn: str) -> int | None:
    """Items of the collection in the database (None: no such collection)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT to_regclass('pgstac.collections') IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM pgstac.collections WHERE id = %s)",
            (COLLECTION,),
        ).fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute(
            "SELECT count(*) FROM pgstac.items WHERE collection = %s", (COLLECTION,)
        ).fetchone()
        return int(row[0]) if row else 0


def load_pgstac(path: Path, dsn: str, n: int, via_tiler: int, folder: Path) -> list[str]:
    """Load the file; lines for the report."""
    out = []
    if via_tiler >= n:
        cid, count, read, total, read_rss, peak, marks = run_spawned(_tiler_load, str(path), dsn)
        assert (cid, count) == (COLLECTION, n), (cid, count)
        rate = n / (total - read)
        out.append(
            f"`tiler load` of {n:,} items: {total:.0f} s ({read:.0f} s reading and checking the "
            f"file with the in-memory loader, RSS {read_rss:,.0f} MiB; {total - read:.0f} s "
            f"upserting with pypgstac, {rate:,.0f} items/s); peak RSS {peak:,.0f} MiB"
        )
        if len(marks) > 2:
            steps = [
                f"{(b[0] - a[0]) / (b[1] - a[1]):,.0f}"
                for a, b in zip(marks, marks[1:], strict=False)
            ]
            out.append(f"upsert rate per 100k items, in order (items/s): {', '.join(steps)}")
        return out
    head, tail = folder / "head.ndjson", folder / "tail.ndjson"
    split_file(path, via_tiler, head, tail)
    cid, count, read, total, read_rss, peak, _ = run_spawned(_tiler_load, str(head), dsn)
    out.append(
        f"`tiler load` of the first {via_tiler:,} items: {total:.0f} s ({read:.0f} s reading "
        f"and checking, {total - read:.0f} s upserting, {via_tiler / (total - read):,.0f} "
        f"items/s); peak RSS {peak:,.0f} MiB"
    )
    seconds, peak = run_spawned(_pypgstac_load, str(tail), dsn)
    out.append(
        f"pypgstac `Loader.load_items` (insert) of the other {n - via_tiler:,} items: "
        f"{seconds:.0f} s ({(n - via_tiler) / seconds:,.0f} items/s), peak RSS {peak:,.0f} MiB "
        "(the collection document's extent and summaries are those of the first items)"
    )
    head.unlink()
    tail.unlink()
    return out


def database_facts(dsn: str) -> list[str]:
    """Table and index sizes, PostgreSQL and PgSTAC versions, memory settings."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        version = conn.execute("SELECT pgstac.get_version()").fetchone()
        pg = conn.execute("SHOW server_version").fetchone()
        shared = conn.execute("SHOW shared_buffers").fetchone()
        work = conn.execute("SHOW work_mem").fetchone()
        parts = conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'pgstac.items'::regclass ORDER BY 1"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid IN (SELECT inhrelid FROM pg_inherits "
            "WHERE inhparent = 'pgstac.items'::regclass) ORDER BY 1"
        ).fetchall()
    assert version and pg and shared and work
    out = [
        f"PostgreSQL {pg[0].split()[0]}, PgSTAC {version[0]}, shared_buffers {shared[0]}, "
        f"work_mem {work[0]}"
    ]
    for name, heap, idx in parts:
        out.append(
            f"partition {name}: heap {heap / 2**20:,.0f} MiB, indexes {idx / 2**20:,.0f} MiB"
        )
    out.extend(
        f"  {d.split(' ON ')[0].replace('CREATE ', '')}: {d.split(' USING ')[1]}"
        for _, d in indexes
    )
    return out


# ---------------------------------------------------------------------------------------
# tiles


def tile_geoms(n_items: int, zoom: int, n: int, seed: int) -> list[Any]:
    """Footprints (lon/lat) of ``n`` random tiles of ``zoom`` whose centre has data.

    Points are drawn uniformly over the generator's grid cells clipped to -180..180 and
    -85..85 (at 1M items the northern rows of the generator's grid run past 180 degrees).
    """
    import morecantile
    import shapely
    from shapely.geometry import box

    grid = cells(n_items)
    area = shapely.union_all([box(*c[1:]) for c in grid]).intersection(box(-180, -85, 180, 85))
    shapely.prepare(area)
    w, s, e, nb = area.bounds
    tms = morecantile.tms.get("WebMercatorQuad")
    rng = numpy.random.default_rng(seed)
    out = []
    while len(out) < n:
        lon, lat = rng.uniform(w, e), rng.uniform(s, nb)
        if shapely.contains_xy(area, lon, lat):
            out.append(box(*tms.bounds(tms.tile(lon, lat, zoom))))
    return out


# ---------------------------------------------------------------------------------------
# lookups


class Parts:
    """Wraps a PgstacCatalog's steps to time them (no change to what they do)."""

    def __init__(self, catalog: Any) -> None:
        self.clock = {"where": 0.0, "sql": 0.0, "hydrate": 0.0}
        self.rows = 0
        db = catalog.db
        rows_of = db.rows
        items_of = catalog._items

        def rows(query: Any, params: Any = None) -> Any:
            t = time.perf_counter()
            try:
                got = rows_of(query, params)
            finally:
                # stac_search_to_where is sent as text, the item query as sql.Composed
                key = "where" if isinstance(query, str) else "sql"
                self.clock[key] += time.perf_counter() - t
            if key == "sql":
                self.rows = len(got)
            return got

        def items(rows_: Any) -> Any:
            t = time.perf_counter()
            try:
                return items_of(rows_)
            finally:
                self.clock["hydrate"] += time.perf_counter() - t

        db.rows = rows
        catalog._items = items

    def reset(self) -> None:
        for k in self.clock:
            self.clock[k] = 0.0
        self.rows = 0


def time_search(
    catalog: Any, search: Any, geoms: list[Any], parts: Parts | None = None
) -> dict[str, Any]:
    """``catalog.search(search, g, limit=LIMIT)`` over ``geoms``: times (ms), counts, parts."""
    from tiler.errors import TooManyItems

    times, counts, over, rows = [], [], 0, []
    split = {"where": [], "sql": [], "hydrate": [], "rest": []}
    for g in geoms:
        if parts is not None:
            parts.reset()
        t = time.perf_counter()
        try:
            counts.append(len(catalog.search(search, g, limit=LIMIT)))
        except TooManyItems:
            over += 1
        ms = (time.perf_counter() - t) * 1000
        times.append(ms)
        if parts is not None:
            c = {k: v * 1000 for k, v in parts.clock.items()}
            for k, v in c.items():
                split[k].append(v)
            split["rest"].append(ms - sum(c.values()))
            rows.append(parts.rows)
    return {
        "tiles": len(geoms),
        "p50": statistics.median(times),
        "p95": pct(times, 0.95),
        "max": max(times),
        "mean": statistics.fmean(times),
        "items": statistics.fmean(counts) if counts else float("nan"),
        "over": over,
        "times": times,
        "split": {k: statistics.fmean(v) for k, v in split.items() if v},
        "rows": statistics.fmean(rows) if rows else None,
    }


def lookups(
    catalog: Any, n_items: int, zooms: range, n_tiles: int, parts: Parts | None
) -> dict[tuple[int, str], dict[str, Any]]:
    from tiler.catalog.filters import make_search

    out = {}
    searches = {label: make_search(**kw) for label, kw in SEARCHES.items()}
    warm = tile_geoms(n_items, 12, 20, seed=999)
    for search in searches.values():  # connections, caches, the base item
        time_search(catalog, search, warm[:5])
    for z in zooms:
        geoms = tile_geoms(n_items, z, n_tiles, seed=z)
        for label, search in searches.items():
            r = time_search(catalog, search, geoms, parts)
            out[(z, label)] = r
            say(
                f"  z{z:<2} {label:<24} p50 {r['p50']:7.1f} ms  p95 {r['p95']:7.1f}  "
                f"max {r['max']:7.1f}  items {r['items']:6.1f}  over {r['over']:3d}"
            )
    return out


def explain(dsn: str, catalog: Any, n_items: int) -> list[str]:
    """EXPLAIN ANALYZE of the item query for one z8, z10 and z14 tile per search."""
    import psycopg
    from psycopg import sql

    from tiler.catalog.filters import make_search
    from tiler.catalog.pgstac import _ROW

    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path = pgstac, public")
        for z in (8, 10, 14):
            g = tile_geoms(n_items, z, 1, seed=z)[0]
            for label, kw in SEARCHES.items():
                where = catalog._where(make_search(**kw), g)
                q = sql.SQL(
                    "EXPLAIN (ANALYZE, BUFFERS) SELECT {} FROM pgstac.items WHERE {} LIMIT {}"
                )
                plan = conn.execute(
                    q.format(_ROW, sql.SQL(where), sql.Literal(LIMIT + 1))
                ).fetchall()
                out.append(f"-- z{z} {label}: WHERE {where[:300]}")
                out.extend("   " + r[0] for r in plan)
    return out


# ---------------------------------------------------------------------------------------
# the worker


def _worker(dsn: str, n_items: int, cache: bool, queue: Any) -> None:
    t0 = time.perf_counter()
    from starlette.testclient import TestClient

    import tiler.app
    from tiler.catalog.filters import make_search
    from tiler.errors import TooManyItems
    from tiler.settings import Settings

    imported = time.perf_counter() - t0
    rss_import = search_100k.rss_mb()
    t = time.perf_counter()
    settings = (
        Settings(collections=[dsn]) if cache else Settings(collections=[dsn], search_cache_ttl=0)
    )
    app = tiler.app.serve_app(settings)
    client = TestClient(app)
    client.__enter__()  # the lifespan, as a server starts it
    health = client.get("/healthz")
    started = time.perf_counter() - t
    assert health.status_code == 200, health.text
    rss_start = search_100k.rss_mb()
    t = time.perf_counter()
    described = client.get(f"/collections/{COLLECTION}")
    first_info = time.perf_counter() - t
    assert described.status_code == 200, described.text
    catalog = app.state.catalogs[COLLECTION]
    searches = [make_search(**kw) for kw in SEARCHES.values()]
    per = 200 // (len(TARGET_ZOOMS) * len(searches))
    t = time.perf_counter()
    done = 0
    for z in TARGET_ZOOMS:
        for g in tile_geoms(n_items, z, per, seed=100 + z):
            for s in searches:
                with contextlib.suppress(TooManyItems):
                    catalog.search(s, g, limit=LIMIT)
                done += 1
    looked = time.perf_counter() - t
    rss_after = search_100k.rss_mb()
    client.__exit__(None, None, None)
    queue.put(
        {
            "import": imported,
            "start": started,
            "rss_import": rss_import,
            "rss_start": rss_start,
            "first_info": first_info,
            "lookups": done,
            "lookup_s": looked,
            "rss_after": rss_after,
            "peak": peak_rss_mb(),
        }
    )


def worker(dsn: str, n_items: int, cache: bool) -> dict[str, Any]:
    t = time.perf_counter()
    r: dict[str, Any] = run_spawned(_worker, dsn, n_items, cache, poll=0.05)
    r["wall"] = time.perf_counter() - t  # process start, imports, app, healthz, lookups
    return r


# ---------------------------------------------------------------------------------------
# the report


def lookup_table(results: dict[tuple[int, str], dict[str, Any]], with_parts: bool) -> list[str]:
    head = "| zoom | search | p50 ms | p95 ms | max ms | items/tile | over 500 |"
    rule = "|---|---|---:|---:|---:|---:|---:|"
    if with_parts:
        head += " rows fetched | where ms | SQL ms | hydrate ms | re-select ms |"
        rule += "---:|---:|---:|---:|---:|"
    lines = [head, rule]
    for (z, label), r in results.items():
        items = "-" if math.isnan(r["items"]) else f"{r['items']:.1f}"
        line = (
            f"| z{z} | {label} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | "
            f"{items} | {r['over']}/{r['tiles']} |"
        )
        if with_parts:
            s = r["split"]
            line += (
                f" {r['rows']:.0f} | {s['where']:.1f} | {s['sql']:.1f} | {s['hydrate']:.1f} | "
                f"{s['rest']:.1f} |"
            )
        lines.append(line)
    return lines


def target_lines(results: dict[tuple[int, str], dict[str, Any]]) -> list[str]:
    out = []
    for label in SEARCHES:
        times = [
            t
            for (z, lab), r in results.items()
            if lab == label and z in TARGET_ZOOMS
            for t in r["times"]
        ]
        if not times:
            continue
        p50, p95 = statistics.median(times), pct(times, 0.95)
        ok = "met" if p50 < TARGET_P50_MS and p95 < TARGET_P95_MS else "MISSED"
        out.append(f"| z10-z14 | {label} | {p50:.1f} | {p95:.1f} | {ok} |")
    return out


def main(argv: list[str] | None = None) -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items in PgSTAC")
    parser.add_argument("--tiles", type=int, default=200, help="tiles per zoom and search")
    parser.add_argument("--dsn", default=None, help="an existing PgSTAC database")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway cluster")
    parser.add_argument("--dir", type=Path, default=None, help="keep the generated files here")
    parser.add_argument(
        "--tiler-load",
        type=int,
        default=None,
        help="load only the first N items with `tiler load`, the rest with pypgstac directly",
    )
    parser.add_argument(
        "--memory-items", type=int, default=100_000, help="in-memory comparison (0: skip)"
    )
    parser.add_argument("--zooms", default="8-14", help="zoom range, e.g. 8-14")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE plans")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20000 items, 10 tiles, 20000 in memory"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.tiles, args.memory_items = 20_000, 10, 20_000
    z0, z1 = (int(v) for v in args.zooms.split("-"))
    zooms = range(z0, z1 + 1)
    command = "python benchmarks/catalog.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    started = time.perf_counter()
    report: list[str] = []

    from tiler.catalog.pgstac import open_pgstac

    cluster = None
    tmp = tempfile.TemporaryDirectory(prefix="catalog-bench-")
    folder = args.dir or Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if args.dsn:
            dsn = args.dsn
        else:
            from support.pgstac_cluster import PgstacCluster

            t = time.perf_counter()
            cluster = PgstacCluster().start()
            dsn = cluster.dsn
            say(f"throwaway cluster {dsn} started in {time.perf_counter() - t:.1f} s")

        # 1. the data, loaded
        have = count_items(dsn)
        if have == args.items:
            report.append(
                f"the database already holds {args.items:,} items of {COLLECTION}: not loaded"
            )
        else:
            if have is not None:
                raise SystemExit(
                    f"the database holds {have:,} items of {COLLECTION}, not {args.items:,}"
                )
            path = folder / f"items-{args.items}.ndjson"
            report.append(generate(args.items, path))
            say(report[-1])
            via = args.items if args.tiler_load is None else min(args.tiler_load, args.items)
            loaded = load_pgstac(path, dsn, args.items, via, folder)
            report.extend(loaded)
            say(*loaded, sep="\n")
        report.extend(database_facts(dsn))

        # 2. lookups
        catalog = open_pgstac(dsn, [COLLECTION], cache_ttl=0)[COLLECTION]
        parts = Parts(catalog)
        say(f"PgSTAC lookups, {args.tiles} tiles per zoom and search (cache off):")
        load_before = os.getloadavg()[1]
        pg = lookups(catalog, args.items, zooms, args.tiles, parts)
        report.append(
            f"{os.cpu_count()} CPUs; load average (5 min) {load_before:.1f} before the PgSTAC "
            f"lookups, {os.getloadavg()[1]:.1f} after (other jobs share the machine)"
        )
        plans = explain(dsn, catalog, args.items) if args.explain else []
        catalog.close()

        # 3. the worker
        say("worker start ...")
        workers = {cache: worker(dsn, args.items, cache) for cache in (True, False)}

        # 4. in memory
        mem: dict[tuple[int, str], dict[str, Any]] = {}
        mem_load = None
        if args.memory_items:
            from tiler.catalog.loaders import load_collection

            path = folder / f"items-{args.memory_items}.ndjson"
            say(generate(args.memory_items, path))
            mem_load = search_100k.measure_load(path)
            say(f"in-memory load of {args.memory_items:,} items: {mem_load}")
            col = load_collection(path)
            say(f"in-memory lookups at {args.memory_items:,} items:")
            mem = lookups(col, args.memory_items, zooms, args.tiles, None)
            del col

        # 5. the report
        say()
        say("## Results")
        say()
        say("```")
        say(command)
        say("```")
        say()
        for line in report:
            say(f"- {line}")
        say()
        say(
            f"### PgSTAC, {args.items:,} items: "
            f"`PgstacCatalog.search(search, tile, limit={LIMIT})`, cache off"
        )
        say()
        say(*lookup_table(pg, True), sep="\n")
        say()
        say(
            "rows fetched: rows the item query returned (at most 501); where / SQL / hydrate / "
            "re-select: mean ms of `stac_search_to_where`, the item query, hydrating and parsing "
            "the rows, and the rest (the in-memory catalogue's selection and order of the rows)."
        )
        say()
        say(
            f"Target (z10-z14, all tiles of the search): p50 < {TARGET_P50_MS:g} ms, "
            f"p95 < {TARGET_P95_MS:g} ms"
        )
        say()
        say("| zooms | search | p50 ms | p95 ms | target |")
        say("|---|---|---:|---:|---|")
        say(*target_lines(pg), sep="\n")
        say()
        say("### Worker (fresh process, `serve_app(Settings(collections=[dsn]))`)")
        say()
        say(
            "| search cache | imports s | serve_app + 1st /healthz s | process start to end of "
            "lookups s | RSS after imports MiB | RSS after start MiB | 1st /collections/{id} s "
            "| RSS after 200 lookups MiB | peak RSS MiB | target (start < 5 s, RSS < 300 MiB) |"
        )
        say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for cache, w in workers.items():
            ok = w["import"] + w["start"] < TARGET_START_S and w["peak"] < TARGET_RSS_MB
            say(
                f"| {'on (300 s)' if cache else 'off'} | {w['import']:.2f} | {w['start']:.2f} | "
                f"{w['wall']:.1f} | {w['rss_import']:.0f} | {w['rss_start']:.0f} | "
                f"{w['first_info']:.2f} | {w['rss_after']:.0f} | {w['peak']:.0f} | "
                f"{'met' if ok else 'MISSED'} |"
            )
        if mem:
            say()
            assert mem_load is not None
            seconds, before, after, n = mem_load
            say(
                f"### In memory, {args.memory_items:,} items: "
                f"`MemoryCatalog.search(search, tile, limit={LIMIT})`"
            )
            say()
            say(
                f"load (NDJSON, fresh process): {seconds:.1f} s, RSS {after:,.0f} MiB "
                f"(+{after - before:,.0f} MiB for the items)"
            )
            say()
            say(*lookup_table(mem, False), sep="\n")
            say()
            say("| zooms | search | p50 ms | p95 ms | target |")
            say("|---|---|---:|---:|---|")
            say(*target_lines(mem), sep="\n")
        if plans:
            say()
            say("### EXPLAIN ANALYZE of the item query")
            say()
            say("```")
            say(*plans, sep="\n")
            say("```")
        say()
        say(f"run: {time.perf_counter() - started:.0f} s")
    finally:
        if cluster is not None:
            if args.keep:
                say(f"kept the cluster: {cluster.dsn} (data in {cluster.base_dir})")
                import atexit

                atexit.unregister(cluster.close)
            else:
                cluster.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
