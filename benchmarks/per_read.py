"""Per-read CPU overhead: one band onto a 256 px tile grid from an open dataset (issue 19).

The engine's read path (``tiler.engine.io.ItemReader.read`` with a
``tiler.engine.grids.TileGrid``, through its ``DatasetCache``) against rio-tiler's own
``Reader.tile`` on a reader kept open, same file, same tile, blocks already in GDAL's cache
(a warm-up read first). What is measured is CPU: ``time.process_time()`` over ``--reads``
reads, divided by the count; the median of ``--rounds`` rounds is reported (and the spread).
The two are measured alternately, round by round.

The file is written once into a temporary folder, like a Sentinel-2 L2A band:
4096 x 4096 px of 10 m in EPSG:32613 (uint16, nodata 0, a tilted swath edge leaving nodata
inside it), and its 20 m cloud-probability band (uint8, nodata 255); COGs with 512 px blocks,
deflate + predictor 2, internal overviews (rasterio's ``COG`` driver). Cases:

- ``aligned``: a tile matrix set in the file's CRS whose tiles fall on its pixel grid
  (origin at the raster's corner, 10 m pixels at the zoom read), so the tile is a window;
- ``aligned-20m``: the same at 20 m on the 20 m band (the quality band's read);
- ``misaligned``: the same CRS, origin shifted by 3.7 m and 7.1 m (sub-pixel);
- ``reprojected``: WebMercatorQuad z14 (a warp from UTM, full resolution);
- ``overview``: WebMercatorQuad z12 (a warp from the file's 1/2 overview);
- ``overview-aligned``: the aligned matrix set one zoom out (20 m: the 1/2 overview).

Both sides' arrays are compared (data and mask): they must be equal.

A reprojected read is a gather through an index warped once per raster layout and tile
(``tiler.engine.sparse``): the first read of a layout onto a tile warps the index and
gathers, the next ones only gather. ``ours`` is the steady state (the index of the case's
tile already warped); ``1st read`` is the CPU of a read once the warped indexes are
forgotten (``SparseReads.forget_grids``; the layout's index raster kept): what a tile pays
once per layout.

Run: ``python benchmarks/per_read.py [--reads 200] [--rounds 7] [--case aligned ...]``.
Target (issue 19): <= 2 ms of CPU per read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import rasterio
from morecantile import TileMatrixSet
from morecantile import tms as tms_registry
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin
from rasterio.warp import transform
from rio_tiler.io import Reader
from shapely.geometry import box

from tiler.catalog.models import Band, Item
from tiler.engine.datasets import DatasetCache
from tiler.engine.grids import TileGrid
from tiler.engine.io import GDAL_DEFAULTS, ItemReader, ReadOptions, remember_default_transforms
from tiler.engine.sparse import SparseReads

EPSG = 32613
ORIGIN = (683_060.0, 4_466_300.0)  # upper-left corner, around lon -103.19, lat 40.14
SIZE = 4096
RES = 10.0


def write_files(folder: Path) -> dict[str, Path]:
    """The 10 m band and the 20 m quality band as COGs; a tilted swath edge inside them."""
    rng = numpy.random.default_rng(19)
    out = {}
    for name, res, dtype, nodata in (("B04", RES, "uint16", 0), ("MSK", 2 * RES, "uint8", 255)):
        n = int(SIZE * RES / res)
        rows, cols = numpy.ogrid[:n, :n]
        valid = cols < 0.6 * n + 0.2 * rows  # a swath edge crossing the raster
        data: numpy.ndarray
        if dtype == "uint16":
            data = rng.integers(1, 5000, (n, n), dtype="uint16")
        else:
            data = rng.integers(0, 101, (n, n), dtype="uint8")
        data[~valid] = nodata
        path = folder / f"{name}.tif"
        profile = {
            "driver": "COG",
            "width": n,
            "height": n,
            "count": 1,
            "dtype": dtype,
            "crs": CRS.from_epsg(EPSG),
            "transform": from_origin(*ORIGIN, res, res),
            "nodata": nodata,
            "blocksize": 512,
            "compress": "deflate",
            "predictor": 2,
            "overview_resampling": "nearest",
        }
        with warnings.catch_warnings():  # the COG driver's in-memory copy has no transform
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(data, 1)
        out[name] = path
    return out


def utm_tms(shift: tuple[float, float] = (0.0, 0.0)) -> TileMatrixSet:
    """Tiles in EPSG:32613 on the raster's grid: zoom 4 has 10 m pixels, zoom 3 20 m."""
    x0, y0 = ORIGIN[0] + shift[0], ORIGIN[1] + shift[1]
    side = SIZE * RES
    matrices: TileMatrixSet = TileMatrixSet.custom(
        [x0, y0 - side, x0 + side, y0], ProjCRS.from_epsg(EPSG), minzoom=0, maxzoom=6
    )
    return matrices


@dataclass(frozen=True)
class Case:
    """One read: a band onto a tile of a tile matrix set."""

    name: str
    band: str
    tms: TileMatrixSet
    tile: tuple[int, int, int]  # x, y, z


def cases() -> list[Case]:
    """The cases of the module docstring (tiles crossed by the swath edge where possible)."""
    wm = tms_registry.get("WebMercatorQuad")
    # a point on the swath edge: row 2048, column 0.7 x 4096 (10 m pixels)
    xs, ys = transform(
        CRS.from_epsg(EPSG), CRS.from_epsg(4326), [ORIGIN[0] + 28_670], [ORIGIN[1] - 20_480]
    )
    z14, z12 = wm.tile(xs[0], ys[0], 14), wm.tile(xs[0], ys[0], 12)
    return [
        Case("aligned", "B04", utm_tms(), (11, 8, 4)),
        Case("aligned-20m", "MSK", utm_tms(), (5, 4, 3)),
        Case("misaligned", "B04", utm_tms((3.7, -7.1)), (11, 8, 4)),
        Case("reprojected", "B04", wm, (z14.x, z14.y, 14)),
        Case("overview", "B04", wm, (z12.x, z12.y, 12)),
        Case("overview-aligned", "B04", utm_tms(), (5, 4, 3)),
    ]


def item_of(paths: dict[str, Path]) -> Item:
    """An item whose bands are the files (nodata as the files say)."""
    bands = {
        "B04": Band("B04", str(paths["B04"]), nodata=0, data_type="uint16"),
        "MSK": Band("MSK", str(paths["MSK"]), nodata=255, data_type="uint8"),
    }
    when = dt.datetime(2021, 7, 1, tzinfo=dt.UTC)
    return Item("scene", when, box(-180, -90, 180, 90), {}, bands)


def per_read_ms(fn: Callable[[], Any], reads: int) -> float:
    """CPU milliseconds per call of ``fn`` over ``reads`` calls."""
    t = time.process_time()
    for _ in range(reads):
        fn()
    return (time.process_time() - t) * 1000 / reads


@dataclass
class Result:
    """Per-read CPU ms of each round, ours and rio-tiler's, and whether they are equal."""

    case: Case
    ours: list[float]
    stock: list[float]
    first: list[float]
    equal: bool


def run_case(
    case: Case, paths: dict[str, Path], reader: ItemReader, reads: int, rounds: int
) -> Result:
    """Alternate rounds of ``reads`` reads: ours, then rio-tiler's ``Reader.tile``."""
    item = item_of(paths)
    x, y, z = case.tile
    grid = TileGrid(case.tms, x, y, z)
    opts = ReadOptions()
    nodata = item.bands[case.band].nodata

    def ours() -> numpy.ma.MaskedArray:
        got = reader.read(item, [case.band], grid, opts)
        assert got is not None
        return got[case.band]

    with (
        rasterio.open(paths[case.band]) as ds,
        Reader(str(paths[case.band]), dataset=ds, tms=case.tms) as src,
    ):

        def stock() -> numpy.ma.MaskedArray:
            img = src.tile(x, y, z, tilesize=256, indexes=[1], nodata=nodata)
            band: numpy.ma.MaskedArray = img.array[0]
            return band

        a, b = ours(), stock()  # warm-up: blocks in GDAL's cache, handles open
        equal = bool(
            numpy.array_equal(a.data, b.data)
            and numpy.array_equal(numpy.ma.getmaskarray(a), numpy.ma.getmaskarray(b))
        )
        mine, theirs, first = [], [], []
        for _ in range(rounds):
            mine.append(per_read_ms(ours, reads))
            theirs.append(per_read_ms(stock, reads))
            first.append(first_read_ms(reader.sparse, ours, max(1, reads // 10)))
    return Result(case, mine, theirs, first, equal)


def first_read_ms(cache: SparseReads, read: Callable[[], Any], reads: int) -> float:
    """CPU ms of a read of a tile whose warped indexes are forgotten (warp and gather)."""
    total = 0.0
    for _ in range(reads):
        cache.forget_grids()
        t = time.process_time()
        read()
        total += time.process_time() - t
    return total * 1000 / reads


def report(results: Sequence[Result]) -> str:
    """A table: medians of the rounds (min..max), ratio, equality."""
    head = (
        "case",
        "tile",
        "ours ms",
        "(min..max)",
        "rio-tiler ms",
        "(min..max)",
        "ours/rt",
        "1st read ms",
        "equal",
    )
    rows = [head]
    for r in results:
        m, s = statistics.median(r.ours), statistics.median(r.stock)
        rows.append(
            (
                r.case.name,
                "{2}/{0}/{1}".format(*r.case.tile),
                f"{m:.2f}",
                f"{min(r.ours):.2f}..{max(r.ours):.2f}",
                f"{s:.2f}",
                f"{min(r.stock):.2f}..{max(r.stock):.2f}",
                f"{m / s:.2f}",
                f"{statistics.median(r.first):.2f}",
                "yes" if r.equal else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reads", type=int, default=200, help="reads per round")
    ap.add_argument("--rounds", type=int, default=7, help="rounds (the median is reported)")
    ap.add_argument("--case", action="append", help="only these cases (repeatable)")
    args = ap.parse_args(argv)
    for key, value in GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    remember_default_transforms()  # as the server does
    chosen = [c for c in cases() if not args.case or c.name in args.case]
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp))
        datasets = DatasetCache()
        reader = ItemReader(datasets)
        try:
            results = [run_case(c, paths, reader, args.reads, args.rounds) for c in chosen]
        finally:
            datasets.close()
    load = os.getloadavg()
    print(
        f"per-read CPU (time.process_time), one band onto a 256 px tile, cached blocks; "
        f"{args.reads} reads x {args.rounds} rounds, median; CPUs {os.cpu_count()}, "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(report(results))


if __name__ == "__main__":
    main()
