"""Loading and per-tile lookup over a large synthetic STAC collection.

Generates N Sentinel-2-like STAC items (default 100,000): an MGRS-like grid of ~110 km
tiles (100 km apart, so neighbours overlap) over Europe, revisited every 5 days for five
years; writes them as a FeatureCollection JSON, newline-delimited JSON and (when the
``stac-geoparquet`` package is installed) stac-geoparquet; then reports

- load time of ``load_collection`` and process memory (RSS) for each format, each in a
  fresh process,
- lookup time of ``select(collection, search, tile)`` over random web-mercator tiles
  z8-z12 inside the area, with no filter, a datetime, a CQL2 filter, and all of these
  plus sortby; and for huge selections (a z5 tile, the whole collection).

Run: ``python benchmarks/search_100k.py [--items 100000] [--tiles 2000] [--dir DIR]``
(``--quick``: a smoke run of 5000 items and 200 tiles, as CI runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

AREA_ORIGIN = (-5.0, 43.0)  # lon, lat of the south-west tile corner (Bay of Biscay)
SPACING_KM = 100.0
SIZE_KM = 109.8
KM_PER_DEG = 111.32
BANDS = {  # asset key: (resolution, data_type, scale)
    "B02": (10, "uint16", 0.0001),
    "B03": (10, "uint16", 0.0001),
    "B04": (10, "uint16", 0.0001),
    "B08": (10, "uint16", 0.0001),
    "B11": (20, "uint16", 0.0001),
    "SCL": (20, "uint8", None),
}


def rss_mb() -> float:
    """Resident set size of this process in MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: peak RSS instead
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


_COLUMNS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_ROWS = "ABCDEFGHJKLMNPQRSTUV"


def grid(n_tiles: int) -> list[tuple[str, float, float, float, float]]:
    """(name, minlon, minlat, maxlon, maxlat) of ``n_tiles`` tiles, rows south to north."""
    rows = max(1, round(math.sqrt(n_tiles / 1.4)))
    cols = math.ceil(n_tiles / rows)
    out = []
    for r in range(rows):
        lat0 = AREA_ORIGIN[1] + r * SPACING_KM / KM_PER_DEG
        lat1 = lat0 + SIZE_KM / KM_PER_DEG
        per_deg_lon = KM_PER_DEG * math.cos(math.radians((lat0 + lat1) / 2))
        for c in range(cols):
            if len(out) == n_tiles:
                break
            lon0 = AREA_ORIGIN[0] + c * SPACING_KM / per_deg_lon
            lon1 = lon0 + SIZE_KM / per_deg_lon
            zone = 31 + int(lon0 // 6)
            band = "TUVW"[min(3, r // 5)]
            square = _COLUMNS[c % len(_COLUMNS)] + _ROWS[r % len(_ROWS)]
            # MGRS-like name (zone, latitude band, square), made unique by row/column
            out.append((f"{zone}{band}{square}{r:02d}{c:02d}", lon0, lat0, lon1, lat1))
    return out


def make_items(n: int, years: int = 5, revisit: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` Sentinel-2 L2A-like STAC item dicts."""
    rng = numpy.random.default_rng(seed)
    per_tile = years * 365 // revisit
    tiles = grid(math.ceil(n / per_tile))
    start = dt.datetime(2019, 1, 1, 10, 30, tzinfo=dt.UTC)
    clouds = numpy.round(rng.beta(0.45, 0.6, n) * 100, 4)
    jitter = rng.integers(0, 600, n)
    swath = rng.random(n)
    items = []
    k = 0
    for t, (name, x0, y0, x1, y1) in enumerate(tiles):
        orbit = t % revisit
        for r in range(per_tile):
            if k == n:
                break
            when = start + dt.timedelta(days=r * revisit + orbit, seconds=int(jitter[k]))
            sat = "A" if r % 2 == 0 else "B"
            stamp = when.strftime("%Y%m%dT%H%M%S")
            item_id = f"S2{sat}_MSIL2A_{stamp}_T{name}"
            if swath[k] < 0.3:  # swath edge: a partial footprint
                ring = [[x0, y0], [x1, y0], [x1, y1], [x0 + (x1 - x0) * 0.4, y1], [x0, y0]]
            else:
                ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            base = (
                f"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/"
                f"{name[:2]}/{name[2]}/{name[3:5]}/{when:%Y}/{when.month}/{item_id}"
            )
            assets: dict[str, Any] = {}
            for key, (res, dtype, scale) in BANDS.items():
                info: dict[str, Any] = {"nodata": 0, "data_type": dtype, "spatial_resolution": res}
                if scale is not None:
                    info.update(scale=scale, offset=0)
                assets[key] = {
                    "href": f"{base}/{key}.tif",
                    "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                    "roles": ["data", "reflectance"],
                    "title": key,
                    "raster:bands": [info],
                    "eo:bands": [{"name": key}],
                }
            assets["visual"] = {
                "href": f"{base}/TCI.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["visual"],
                "eo:bands": [{"name": "red"}, {"name": "green"}, {"name": "blue"}],
            }
            assets["thumbnail"] = {
                "href": f"{base}/preview.jpg",
                "type": "image/jpeg",
                "roles": ["thumbnail"],
            }
            props: dict[str, Any] = {
                "datetime": when.isoformat().replace("+00:00", "Z"),
                "platform": f"sentinel-2{sat.lower()}",
                "constellation": "sentinel-2",
                "instruments": ["msi"],
                "s2:mgrs_tile": name[:5],
                "proj:epsg": 32600 + int(name[:2]),
            }
            if k % 200 != 7:  # a few items lack eo:cloud_cover
                props["eo:cloud_cover"] = float(clouds[k])
            items.append(
                {
                    "type": "Feature",
                    "stac_version": "1.0.0",
                    "stac_extensions": [
                        "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
                        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                        "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
                    ],
                    "id": item_id,
                    "collection": "s2-europe",
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                    "bbox": [x0, y0, x1, y1],
                    "properties": props,
                    "links": [],
                    "assets": assets,
                }
            )
            k += 1
    return items


def area_bounds(items: list[dict[str, Any]]) -> tuple[float, float, float, float]:
    b = numpy.array([it["bbox"] for it in items])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def write_files(items: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    """The items as FeatureCollection JSON, NDJSON and stac-geoparquet (if installed)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    fc = folder / "items.json"
    if not fc.exists():
        fc.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    out["FeatureCollection"] = fc
    nd = folder / "items.ndjson"
    if not nd.exists():
        nd.write_text("".join(json.dumps(it) + "\n" for it in items))
    out["NDJSON"] = nd
    try:
        import stac_geoparquet.arrow as sga
    except ImportError:
        print("stac-geoparquet not installed: no geoparquet file", file=sys.stderr)
        return out
    gp = folder / "items.parquet"
    if not gp.exists():
        sga.to_parquet(sga.parse_stac_items_to_arrow(items), gp)
    out["stac-geoparquet"] = gp
    return out


def _measure_load(path: str, queue: Any) -> None:
    import tiler.app  # noqa: F401  (imports before the baseline)

    with contextlib.suppress(ImportError):  # part of the baseline too
        import stac_geoparquet.arrow  # noqa: F401
    from tiler.catalog.loaders import load_collection
    from tiler.process import paused_gc

    before = rss_mb()
    t = time.perf_counter()
    with paused_gc():  # as the server loads (tiler.app.serve_app)
        col = load_collection(path)
    seconds = time.perf_counter() - t
    queue.put((seconds, before, rss_mb(), len(col.items)))


def measure_load(path: Path) -> tuple[float, float, float, int] | None:
    """(seconds, RSS before, RSS after, items) of loading ``path`` in a fresh process."""
    import queue as queues

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure_load, args=(str(path), queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except queues.Empty:
            if not proc.is_alive():  # it failed (its traceback is on stderr)
                return None
    proc.join()
    return result


def random_tiles(bounds: tuple[float, ...], n: int, zooms: range, seed: int = 1) -> list[Any]:
    """Footprints (lon/lat boxes) of ``n`` random web-mercator tiles inside ``bounds``."""
    import morecantile
    from shapely.geometry import box

    tms = morecantile.tms.get("WebMercatorQuad")
    rng = numpy.random.default_rng(seed)
    out = []
    for _ in range(n):
        lon = rng.uniform(bounds[0], bounds[2])
        lat = rng.uniform(bounds[1], bounds[3])
        tile = tms.tile(lon, lat, int(rng.choice(list(zooms))))
        out.append(box(*tms.bounds(tile)))
    return out


def time_lookups(col: Any, search: Any, geoms: list[Any]) -> dict[str, float]:
    """Times (ms) of ``MemoryCatalog.search`` over ``geoms``: the first with cold caches, then warm.

    The first call starts from empty per-collection caches (no filter results, no sort
    ranks); the others run one after the other, so a filter is only matched against
    items that no earlier tile had (as a server warms up while a map is browsed).
    """
    from tiler.catalog.memory import MemoryCatalog

    col = MemoryCatalog(col.id, col.items)  # empty caches
    t = time.perf_counter()
    col.search(search, geoms[0])
    cold = (time.perf_counter() - t) * 1000
    times = []
    counts = []
    for g in geoms:
        t = time.perf_counter()
        n = len(col.search(search, g))
        times.append((time.perf_counter() - t) * 1000)
        counts.append(n)
    times.sort()
    return {
        "cold": cold,
        "median": statistics.median(times),
        "p95": times[min(len(times) - 1, int(0.95 * len(times)))],
        "max": times[-1],
        "items": statistics.fmean(counts),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="number of items")
    parser.add_argument("--tiles", type=int, default=2000, help="random tiles to look up")
    parser.add_argument("--dir", type=Path, default=None, help="keep the files here")
    parser.add_argument(
        "--formats",
        default="FeatureCollection,NDJSON,stac-geoparquet",
        help="comma-separated formats to load",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 5000 items, 200 tiles")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.tiles = 5000, 200

    from tiler.catalog.filters import make_search
    from tiler.catalog.loaders import load_collection

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        t = time.perf_counter()
        items = make_items(args.items)
        bounds = area_bounds(items)
        files = write_files(items, folder)
        del items
        print(
            f"{args.items} items over lon {bounds[0]:.1f}..{bounds[2]:.1f}, "
            f"lat {bounds[1]:.1f}..{bounds[3]:.1f}; generated and written in "
            f"{time.perf_counter() - t:.1f} s to {folder}"
        )
        print()
        print(f"{'format':<18} {'file MB':>8} {'load s':>7} {'RSS MB':>7} {'delta MB':>9}")
        wanted = [f.strip() for f in args.formats.split(",") if f.strip()]
        for name, path in files.items():
            if name not in wanted:
                continue
            result = measure_load(path)
            if result is None:
                print(f"{name:<18} failed to load", flush=True)
                continue
            seconds, before, after, n = result
            assert n == args.items, (name, n)
            size = path.stat().st_size / 2**20
            print(
                f"{name:<18} {size:>8.0f} {seconds:>7.2f} {after:>7.0f} {after - before:>9.0f}",
                flush=True,
            )

        col = load_collection(files["FeatureCollection"])
        t = time.perf_counter()
        for _ in range(3):
            col.bounds  # noqa: B018  (each request's backend reads it)
        print(f"\nCollection.bounds: {(time.perf_counter() - t) / 3 * 1000:.3f} ms per call")
        geoms = random_tiles(bounds, args.tiles, range(8, 13))
        year = "2021-06-01/2021-08-31"
        searches = [
            ("no filter", make_search()),
            ("datetime", make_search(datetime=year)),
            ("eo:cloud_cover < 20", make_search(filter="eo:cloud_cover < 20")),
            (
                "datetime+filter+sortby",
                make_search(
                    datetime=year,
                    filter="eo:cloud_cover < 20 AND platform = 'sentinel-2a'",
                    sortby="-eo:cloud_cover,datetime",
                ),
            ),
            ("sortby only", make_search(sortby="eo:cloud_cover")),
        ]
        print()
        print(f"select() over {args.tiles} random tiles z8-z12 (ms; items per tile)")
        head = f"{'search':<24} {'cold 1st':>9} {'median':>8} {'p95':>8} {'max':>8} {'items':>7}"
        print(head)
        for label, search in searches:
            r = time_lookups(col, search, geoms)
            print(
                f"{label:<24} {r['cold']:>9.2f} {r['median']:>8.3f} {r['p95']:>8.3f} "
                f"{r['max']:>8.3f} {r['items']:>7.1f}"
            )

        import morecantile
        from shapely.geometry import box

        tms = morecantile.tms.get("WebMercatorQuad")
        centre = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
        huge = [
            ("z6 tile", [box(*tms.bounds(tms.tile(*centre, 6)))]),
            ("z5 tile", [box(*tms.bounds(tms.tile(*centre, 5)))]),
            ("everything", [None]),
        ]
        print()
        print("select() on huge selections (ms; cold: empty caches, warm: median of 5)")
        print(f"{'area / search':<36} {'cold':>8} {'warm':>8} {'items':>7}")
        for area, geom in huge:
            for label, search in searches:
                r = time_lookups(col, search, geom * 5)
                name = f"{area} / {label}"
                print(f"{name:<36} {r['cold']:>8.2f} {r['median']:>8.2f} {r['items']:>7.0f}")


if __name__ == "__main__":
    main()
