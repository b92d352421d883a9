"""The naive quality-mosaic oracle of one tile, and the read floor of a tile.

Both read with rio-tiler's ``Reader.tile`` (as the server and the SPEC's oracle do) and know
only the STAC FeatureCollection file, not the server's code.

- :func:`naive_mosaic`: read the quality band and every output band of EVERY item whose bbox
  intersects the tile, stack them, take per pixel the first item (collection order: datetime,
  then id) with the highest valid quality, keep all bands of that item, mask the pixel where
  one of them is masked or where no item has a valid quality.
- :func:`read_floor`: the time to read just the given bands of just the given items (those
  that win a pixel): what no exact mosaic of the tile can avoid.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy
import numpy.typing as npt
import rasterio
from morecantile import Tile, TileMatrixSet
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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
    try:
        with Reader(href, tms=tms, dataset=dataset) as src:
            img = src.tile(tile.x, tile.y, tile.z, tilesize=tilesize)
    except TileOutsideBounds:
        return None
    return img.array[0]


def naive_mosaic(
    items: Sequence[StacItem],
    tms: TileMatrixSet,
    tile: Tile,
    quality_band: str,
    bands: Sequence[str],
    negate: bool = True,
    tilesize: int = 256,
) -> numpy.ma.MaskedArray:
    """The exact quality mosaic of ``tile``: quality ``-quality_band`` (``negate``) or as is.

    Returns:
        (len(bands), tilesize, tilesize) masked array; data 0 where masked.
    """
    shape = (tilesize, tilesize)
    qualities: list[npt.NDArray[numpy.float64]] = []
    stacks: list[numpy.ma.MaskedArray] = []
    for item in overlapping(items, tms, tile):
        q = read_band(item.hrefs[quality_band], tms, tile, tilesize)
        if q is None:
            continue
        value = numpy.ma.getdata(q).astype("float64")
        value = -value if negate else value
        valid = ~numpy.ma.getmaskarray(q) & numpy.isfinite(value)
        qualities.append(numpy.where(valid, value, -numpy.inf))
        layers = [read_band(item.hrefs[b], tms, tile, tilesize) for b in bands]
        stacks.append(
            numpy.ma.stack(
                [numpy.ma.masked_all(shape, "uint16") if a is None else a for a in layers]
            )
        )
    if not qualities:
        return numpy.ma.masked_all((len(bands), *shape), "uint16")
    quality = numpy.stack(qualities)  # (items, rows, cols)
    candidate = numpy.isfinite(quality).any(axis=0)
    winner = numpy.argmax(quality, axis=0)  # the first of equal maxima: collection order
    data = numpy.stack([numpy.ma.getdata(s) for s in stacks])  # (items, bands, rows, cols)
    masks = numpy.stack([numpy.ma.getmaskarray(s) for s in stacks])
    pick = winner[None, None]
    out = numpy.take_along_axis(data, pick, axis=0)[0]
    mask = numpy.take_along_axis(masks, pick, axis=0)[0].any(axis=0) | ~candidate
    out[:, mask] = 0
    return numpy.ma.MaskedArray(out, mask=numpy.broadcast_to(mask, out.shape).copy())


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
