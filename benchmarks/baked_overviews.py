"""Baked layers' overviews: nearest-decimated vs averaged vs the quality mosaic of each level.

A baked layer answers the zooms where live tiles refuse too many items from its COG's
overviews. Three ways to make them, measured side by side in one run over the generated
collection (``generate.py --realistic``: 24 band-per-file items, swath edges, 20 m
``MSK_CLDPRB``), a ``--region`` px square at 10 m exported in the items' CRS (quality
``-MSK_CLDPRB``, bands ``B04,B03,B02``), the chunks computed once:

- **nearest**: GDAL's COG driver with ``OVERVIEW_RESAMPLING=NEAREST`` (``tiler export
  --overviews nearest``): each overview pixel is one full-resolution pixel, all bands of
  one winner.
- **average**: ``OVERVIEW_RESAMPLING=AVERAGE``: each overview pixel is the mean of 2 x 2
  pixels of the level below, bands of up to four items mixed (the validity band too).
- **mosaic**: each overview level is the quality mosaic computed again at that level's
  resolution (20, 40, 80 m ...; what a live tile does at its zoom), passed to the COG driver
  as the source's overviews (a VRT's ``<Overview>`` elements): what ``tiler export`` writes
  (:func:`tiler.export.cog.write_output`).

For each variant: the cost to build (the COG, plus the per-level mosaics for **mosaic**), and,
at zooms where live tiles still work (the items limit lifted here), the share of a baked
tile's pixels equal to the live tile (same validity, and all bands equal where valid) and
the largest per-tile mean absolute difference where both are valid, over
``--tiles`` tiles per zoom meeting the region (seeded; pixels whose centre is inside the
region), read as the server reads baked tiles (:func:`tiler.engine.baked.read_tile`).

Run: ``python benchmarks/baked_overviews.py [--region 2048] [--size 8192] [--scenes 24]
[--tiles 6] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import morecantile
import numpy
import support_path  # noqa: F401 - puts tests/ on sys.path for support
from generate import EPSG, RES, centre_square, generate_scenes
from rasterio.crs import CRS
from rasterio.warp import transform, transform_bounds
from rio_tiler.io import Reader
from support.baked import compute_parts

from tiler.catalog.filters import make_search
from tiler.catalog.loaders import load_collection
from tiler.engine.baked import open_layers, read_tile
from tiler.engine.expression import parse
from tiler.engine.grids import TileGrid
from tiler.engine.io import ReadOptions
from tiler.engine.service import Engine
from tiler.export.chunks import ExportSpec
from tiler.export.cog import plan_tags, write_cog, write_output
from tiler.export.plan import Region
from tiler.settings import Settings

QUALITY = "-MSK_CLDPRB"
BANDS = ("B04", "B03", "B02")
WMQ = morecantile.tms.get("WebMercatorQuad")
VARIANTS = ("nearest", "average", "mosaic")


def build(
    spec: ExportSpec, region: Region, folder: Path, chunk: int, block: int
) -> tuple[dict[str, Path], dict[str, float]]:
    """The three COGs and what each cost (seconds)."""
    # the output's chunks and the overview levels' (what ``tiler export`` computes)
    plan, store, seconds = compute_parts(spec, region, folder / "parts.tif", chunk, block)
    cost = {"chunks": seconds[0], "mosaic levels": sum(seconds[1:])}
    tags = plan_tags(plan)
    cogs = {name: folder / f"{name}.tif" for name in VARIANTS}
    vrt = store.vrt(plan.grid, plan.dtype, list(plan.spec.bands))  # without overviews
    for name, resampling in (("nearest", "NEAREST"), ("average", "AVERAGE")):
        t0 = time.perf_counter()
        write_cog(vrt, cogs[name], plan.block, tags=tags, resampling=resampling)
        cost[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_output(plan, store, cogs["mosaic"])  # the levels as the COG's overviews
    cost["mosaic"] = time.perf_counter() - t0 + cost["mosaic levels"]
    store.remove()
    return cogs, cost


def _tiles(bounds: tuple[float, float, float, float], z: int, n: int) -> list[morecantile.Tile]:
    """Up to ``n`` tiles of zoom ``z`` meeting ``bounds`` (lon/lat), seeded."""
    meeting = list(WMQ.tiles(*bounds, [z]))
    return random.Random(z).sample(meeting, min(n, len(meeting)))


def _inside(t: morecantile.Tile, crs: Any, bbox: tuple[float, float, float, float]) -> Any:
    """Which pixels of tile ``t`` have their centre inside ``bbox`` (in ``crs``)."""
    w, s, e, n = WMQ.xy_bounds(t)
    step = (e - w) / 256
    xs, ys = numpy.meshgrid(
        w + step * (numpy.arange(256) + 0.5), n - step * (numpy.arange(256) + 0.5)
    )
    x, y = transform(WMQ.crs._pyproj_crs.to_wkt(), crs, xs.ravel(), ys.ravel())
    x, y = numpy.asarray(x).reshape(256, 256), numpy.asarray(y).reshape(256, 256)
    return (x > bbox[0]) & (x < bbox[2]) & (y > bbox[1]) & (y < bbox[3])


def compare(
    collection: Path, cogs: dict[str, Path], zooms: Sequence[int], tiles: int
) -> dict[int, dict[str, Any]]:
    """Per zoom: the share of baked tiles' pixels equal to live tiles, per variant."""
    settings = Settings()
    engine = Engine.from_settings(settings, max_items=sys.maxsize)
    catalog = load_collection(collection)
    info = catalog.info()
    quality = parse(QUALITY, info.bands, info.aliases)
    layers = {x.name: x for x in open_layers({k: str(v) for k, v in cogs.items()}, engine.datasets)}
    with Reader(str(cogs["nearest"])) as src:
        crs, bbox = src.crs, src.bounds
        bounds = transform_bounds(crs, "EPSG:4326", *bbox, densify_pts=21)
    out: dict[int, dict[str, Any]] = {}
    try:
        for z in zooms:
            counts = dict.fromkeys(VARIANTS, 0)
            diffs: dict[str, list[float]] = {name: [] for name in VARIANTS}
            chosen = _tiles(bounds, z, tiles)
            total = 0
            for t in chosen:
                inside = _inside(t, crs, bbox)
                total += int(inside.sum())
                grid = TileGrid(WMQ, t.x, t.y, t.z, 256)
                live, _ = engine.mosaic(
                    catalog, make_search(), grid, quality, list(BANDS), ReadOptions()
                )
                valid = ~numpy.ma.getmaskarray(live.array).any(axis=0)
                for name in VARIANTS:
                    baked = read_tile(layers[name], grid, BANDS, engine.datasets)
                    if baked is None:
                        raise SystemExit(f"{name}: tile {t} is outside the region")
                    same_valid = valid == ~baked.array.mask[0]
                    equal = (baked.array.data == live.array.data).all(axis=0)
                    counts[name] += int((same_valid & (equal | ~valid) & inside).sum())
                    both = valid & ~baked.array.mask[0] & inside
                    delta = baked.array.data[:, both].astype("float64") - live.array.data[:, both]
                    diffs[name].append(float(numpy.abs(delta).mean()) if both.any() else 0.0)
            out[z] = {"tiles": len(chosen), "pixels": total}
            out[z] |= {k: v / max(total, 1) for k, v in counts.items()}
            out[z] |= {f"{k} diff": max(v) for k, v in diffs.items()}
    finally:
        engine.close()
        catalog.close()
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="where generate.py keeps the data")
    ap.add_argument("--scenes", type=int, default=24, help="items (even)")
    ap.add_argument("--size", type=int, default=8192, help="area side in 10 m pixels")
    ap.add_argument("--region", type=int, default=2048, help="exported square side in pixels")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--tiles", type=int, default=6, help="tiles compared per zoom")
    ap.add_argument("--quick", action="store_true", help="4 small items, a 1024 px region")
    args = ap.parse_args(argv)
    if args.quick:
        args.scenes, args.size, args.region, args.tiles = 4, 1024, 1024, 2
    kwargs = {"directory": args.dir} if args.dir else {}
    collection = generate_scenes(scenes=args.scenes, size=args.size, realistic=True, **kwargs)
    print(f"collection {collection}: {args.scenes} items; load {os.getloadavg()}")
    spec = ExportSpec((str(collection),), "s2-synthetic", QUALITY, BANDS)
    region = Region(centre_square(args.size, args.region), CRS.from_epsg(EPSG))
    with tempfile.TemporaryDirectory() as tmp:
        cogs, cost = build(spec, region, Path(tmp), args.chunk, 512)
        with Reader(str(cogs["nearest"])) as src:
            native = int(src.maxzoom)
        zooms = list(range(native, native - 5, -1))
        shares = compare(collection, cogs, zooms, args.tiles)
        sizes = {name: cogs[name].stat().st_size / 2**20 for name in VARIANTS}
    print(f"region {args.region} x {args.region} px at {RES:g} m; chunks: {cost['chunks']:.1f} s")
    print("build cost (s): " + ", ".join(f"{k} {v:.1f}" for k, v in cost.items() if k != "chunks"))
    print("COG size (MiB): " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()))
    print("share of baked tile pixels equal to the live tile (pixels inside the region):")
    print(f"{'zoom':>5} {'tiles':>5} {'pixels':>8} " + " ".join(f"{n:>8}" for n in VARIANTS))
    for z, row in shares.items():
        cells = " ".join(f"{row[name]:8.2%}" for name in VARIANTS)
        print(f"{z:>5} {row['tiles']:>5} {row['pixels']:>8} {cells}")
    print("largest per-tile mean |baked - live| where both are valid (reflectance units):")
    for z, row in shares.items():
        print(f"{z:>5} " + " ".join(f"{row[f'{name} diff']:8.1f}" for name in VARIANTS))
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
