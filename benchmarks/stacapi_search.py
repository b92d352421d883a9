"""Per-tile item search through a STAC API: stac-fastapi-pgstac on loopback, cache off and on.

    python benchmarks/stacapi_search.py [--items 20000] [--tiles 200] [--quick]

Starts a throwaway PostgreSQL + PostGIS + PgSTAC server (tests/support/pgstac_cluster.py), loads
synthetic Sentinel-2-like items (search_100k.py's generator) with ``tiler load``, starts
stac-fastapi-pgstac on it (tests/support/stacapi_server.py), then times
``StacApiCatalog.search(search, tile, limit=500)`` over random z10-z14 tiles: with the
search cache off (every call asks the API), and on (the same tiles again: answered from the
cache), for no filter, a datetime window, a CQL2 filter and a sortby. Also the PgSTAC
catalogue on the same database, for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import support_path  # noqa: F401 (tests/ on sys.path)
from search_100k import area_bounds, make_items, random_tiles, write_files
from support.pgstac_cluster import PgstacCluster
from support.stacapi_server import stac_api

from tiler.catalog.filters import make_search
from tiler.catalog.pgstac import open_pgstac
from tiler.catalog.stacapi import StacApiCatalog
from tiler.errors import TooManyItems
from tiler.tools.load import load

CASES = {
    "no filter": {},
    "datetime (1 month)": {"datetime": "2022-06-01/2022-06-30"},
    "CQL2 eo:cloud_cover < 20": {"filter": "eo:cloud_cover < 20"},
    "sortby -eo:cloud_cover": {"sortby": "-eo:cloud_cover"},
}


def _times(catalog: Any, search: Any, geoms: list[Any]) -> tuple[list[float], float]:
    out, items = [], []
    for g in geoms:
        t = time.perf_counter()
        try:
            items.append(len(catalog.search(search, g, limit=500)))
        except TooManyItems:
            items.append(501)
        out.append((time.perf_counter() - t) * 1000)
    return out, statistics.fmean(items)


def _row(name: str, times: list[float], items: float) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    return f"| {name} | {statistics.median(times):.1f} | {p95:.1f} | {items:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--tiles", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1000 items, 10 tiles")
    args = parser.parse_args()
    if args.quick:
        args.items, args.tiles = 1000, 10
    with tempfile.TemporaryDirectory() as tmp, PgstacCluster() as cluster:
        cluster.start()
        items = make_items(args.items)
        bounds = area_bounds(items)
        path = write_files(items, Path(tmp))["NDJSON"]
        t = time.perf_counter()
        cid, count = load(path, cluster.dsn)
        print(f"loaded {count} items into PgSTAC in {time.perf_counter() - t:.1f} s")
        geoms = random_tiles(bounds, args.tiles, range(10, 15))
        rows = ["| catalogue, case | p50 ms | p95 ms | items per tile |", "|---|---|---|---|"]
        with stac_api(cluster.host, cluster.port, cluster.dbname, "sort,filter,fields") as root:
            for cache in (False, True):
                api = StacApiCatalog(f"{root}/collections/{cid}", cache_ttl=600 if cache else 0)
                for name, kwargs in CASES.items():
                    search = make_search(**kwargs)
                    if cache:
                        _times(api, search, geoms)  # fill it
                    times, n = _times(api, search, geoms)
                    label = "STAC API, cached" if cache else "STAC API, no cache"
                    rows.append(_row(f"{label}, {name}", times, n))
        (db,) = open_pgstac(cluster.dsn, [cid], cache_ttl=0).values()
        for name, kwargs in CASES.items():
            times, n = _times(db, make_search(**kwargs), geoms)
            rows.append(_row(f"PgSTAC, no cache, {name}", times, n))
        db.close()
    print(f"{count} items, {args.tiles} random z10-z14 tiles, limit 500")
    print("\n".join(rows))
    print(f"command: python benchmarks/stacapi_search.py --items {args.items} --tiles {args.tiles}")


if __name__ == "__main__":
    main()
