"""The naive quality-mosaic oracle, and the read floor of a tile (tests and benchmarks).

It reads with rio-tiler's ``Reader.tile`` (as the server does) and knows only STAC files,
not the server's code:

- :func:`naive_mosaic`: stack the quality of EVERY item, take per pixel the first item
  (collection order: datetime, then id) with the highest valid quality, keep all bands of that
  item, invalid where one of them is masked or where no item has a valid quality.
- :func:`mosaic_tile`: the same for one tile of a FeatureCollection file's items
  (:func:`load_items`), reading each band file itself (the benchmarks' check).
- :func:`read_floor`: the time to read just the given bands of just the given items (those
  that win a pixel): what no exact mosaic of the tile can avoid.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import rasterio
from morecantile import Tile, TileMatrixSet
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def naive_mosaic(
    reads: Sequence[dict[str, numpy.ma.MaskedArray] | None],
    quality: Callable[[dict[str, numpy.ndarray]], numpy.ndarray],
    quality_bands: Sequence[str],
    out_bands: Sequence[str],
    days: Sequence[float],
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Stack every item, argmax with ties to the first, all bands of the winner.

    Args:
        reads: per item in collection order, its bands (None: not covering).
        quality: computes the quality from float64 band arrays.
        quality_bands: bands the quality reads (their masks make it invalid).
        out_bands: output bands (band names, quality, _index, _date).
        days: per item, days since 1970 (:func:`days`).

    Returns:
        (data (bands, h, w) float64, valid (h, w) bool).
    """
    shape = next(r for r in reads if r is not None)[quality_bands[0]].shape
    qs = []
    for r in reads:
        if r is None or any(b not in r for b in quality_bands):
            qs.append(numpy.full(shape, -numpy.inf))
            continue
        vals = {b: numpy.ma.getdata(r[b]).astype("float64") for b in quality_bands}
        q = numpy.asarray(quality(vals), dtype="float64")
        bad = numpy.zeros(shape, bool)
        for b in quality_bands:
            bad |= numpy.ma.getmaskarray(r[b])
        bad |= ~numpy.isfinite(q)
        qs.append(numpy.where(bad, -numpy.inf, q))
    stack = numpy.stack(qs)
    has = numpy.isfinite(stack).any(axis=0)
    win = numpy.argmax(stack, axis=0)  # first maximum: ties to the first item
    data = numpy.zeros((len(out_bands), *shape), dtype="float64")
    valid = has.copy()
    rows, cols = numpy.indices(shape)
    for i, name in enumerate(out_bands):
        if name == "quality":
            data[i] = stack[win, rows, cols]
        elif name == "_index":
            data[i] = win
        elif name == "_date":
            data[i] = numpy.asarray(days)[win]
        else:
            for r_i, r in enumerate(reads):
                sel = has & (win == r_i)
                if not sel.any():
                    continue
                if r is None or name not in r:
                    valid &= ~sel
                    continue
                data[i][sel] = numpy.ma.getdata(r[name])[sel]
                valid &= ~(sel & numpy.ma.getmaskarray(r[name]))
    data[:, ~valid] = 0
    return data, valid


def days(items: Sequence[Any]) -> list[float]:
    """The ``days`` argument of :func:`naive_mosaic`: each item's own ``Item.days``."""
    return [it.days for it in items]


def _tile(
    path: str | Path,
    x: int,
    y: int,
    z: int,
    tilesize: int = 256,
    tms: TileMatrixSet | None = None,
    dataset: rasterio.DatasetReader | None = None,
    **kwargs: Any,
) -> numpy.ma.MaskedArray | None:
    """The first band of one file on a tile (None when the file misses the tile)."""
    options: dict[str, Any] = {} if tms is None else {"tms": tms}
    try:
        with Reader(str(path), dataset=dataset, **options) as src:
            img = src.tile(x, y, z, tilesize=tilesize, **kwargs)
    except TileOutsideBounds:
        return None
    return numpy.ma.MaskedArray(img.array.data[0], mask=img.array.mask[0])


def read_tile_bands(
    files: dict[str, Path] | dict[str, str],
    x: int,
    y: int,
    z: int,
    tilesize: int = 256,
    tms: Any = None,
    **kwargs: Any,
) -> dict[str, numpy.ma.MaskedArray] | None:
    """Read every band file of an item with rio-tiler's Reader.tile (None: not covering)."""
    out = {}
    for name, path in files.items():
        band = _tile(path, x, y, z, tilesize, tms, **kwargs)
        if band is None:
            return None
        out[name] = band
    return out


# ---------------------------------------------------------------------------------------
# the items of a FeatureCollection file, for the benchmarks


@dataclass(frozen=True)
class StacItem:
    """What the oracle needs of a STAC item."""

    id: str
    datetime: dt.datetime
    bbox: tuple[float, float, float, float]
    hrefs: dict[str, str]  # band (asset key) -> absolute path

    @property
    def days(self) -> float:
        """Acquisition time in days since 1970-01-01 (the server's ``_date`` band)."""
        return (self.datetime - EPOCH).total_seconds() / 86400.0


def load_items(path: Path) -> list[StacItem]:
    """Items of a FeatureCollection file in collection order (datetime, then id)."""
    base = Path(path).resolve().parent
    items = []
    for f in json.loads(Path(path).read_text())["features"]:
        when = dt.datetime.fromisoformat(f["properties"]["datetime"].replace("Z", "+00:00"))
        hrefs = {k: str(base / a["href"]) for k, a in f["assets"].items()}
        items.append(StacItem(f["id"], when, tuple(f["bbox"]), hrefs))  # type: ignore[arg-type]
    items.sort(key=lambda it: (it.datetime, it.id))
    return items


def overlapping(items: Sequence[StacItem], tms: TileMatrixSet, tile: Tile) -> list[StacItem]:
    """Items whose bbox intersects the tile, in collection order."""
    w, s, e, n = tms.bounds(tile)
    return [
        it
        for it in items
        if it.bbox[0] <= e and w <= it.bbox[2] and it.bbox[1] <= n and s <= it.bbox[3]
    ]


def read_band(
    href: str,
    tms: TileMatrixSet,
    tile: Tile,
    tilesize: int = 256,
    dataset: rasterio.DatasetReader | None = None,
) -> numpy.ma.MaskedArray | None:
    """One band of one file on the tile grid (None when the file misses the tile)."""
    return _tile(href, tile.x, tile.y, tile.z, tilesize, tms, dataset)


def mosaic_tile(
    items: Sequence[StacItem],
    tms: TileMatrixSet,
    tile: Tile,
    quality_band: str,
    bands: Sequence[str],
    negate: bool = True,
    tilesize: int = 256,
    dtype: str = "uint16",
) -> numpy.ma.MaskedArray:
    """:func:`naive_mosaic` of ``tile``: quality ``-quality_band`` (``negate``) or as is.

    Every item whose bbox meets the tile is read; an item whose quality file misses the tile
    cannot win, an output band file that misses it masks the pixels its item wins.

    Returns:
        (len(bands), tilesize, tilesize) masked array of ``dtype``; data 0 where masked.
    """
    shape = (len(bands), tilesize, tilesize)
    reads: list[dict[str, numpy.ma.MaskedArray] | None] = []
    chosen = overlapping(items, tms, tile)
    for item in chosen:
        q = read_band(item.hrefs[quality_band], tms, tile, tilesize)
        if q is None:
            reads.append(None)
            continue
        read = {quality_band: q}
        for b in bands:
            band = q if b == quality_band else read_band(item.hrefs[b], tms, tile, tilesize)
            if band is not None:
                read[b] = band
        reads.append(read)
    if all(r is None for r in reads):
        return numpy.ma.masked_all(shape, dtype)
    sign = -1.0 if negate else 1.0
    data, valid = naive_mosaic(
        reads, lambda v: sign * v[quality_band], [quality_band], bands, days(chosen)
    )
    mask = numpy.broadcast_to(~valid, shape).copy()
    return numpy.ma.MaskedArray(data.astype(dtype), mask=mask)


def read_floor(
    items: Sequence[StacItem],
    bands: Sequence[str],
    tms: TileMatrixSet,
    tile: Tile,
    pool: Executor,
    datasets: dict[str, rasterio.DatasetReader] | None = None,
) -> float:
    """Milliseconds to read ``bands`` of ``items`` for the tile, one task per file.

    With ``datasets`` (href -> open dataset), files are not opened again and GDAL's block
    cache of those datasets is reused between calls.
    """
    hrefs = [item.hrefs[b] for item in items for b in bands]
    t = time.perf_counter()
    list(pool.map(lambda h: read_band(h, tms, tile, dataset=(datasets or {}).get(h)), hrefs))
    return (time.perf_counter() - t) * 1000


@contextmanager
def open_datasets(hrefs: Sequence[str]) -> Iterator[dict[str, rasterio.DatasetReader]]:
    """Keep the files open for the duration (href -> dataset)."""
    opened = {h: rasterio.open(h) for h in dict.fromkeys(hrefs)}
    try:
        yield opened
    finally:
        for ds in opened.values():
            ds.close()
