"""Raster extents: which pixels of a grid an item can have data at, before reading it.

A file's raster (its CRS, transform and size) is a hard bound of where its pixels land on
any grid (an item's footprint geometry is only a selector). Rasters are learned from the
headers of the files read (:class:`ExtentCache`, fed by
:class:`~tiler.engine.io.ItemReader`), so once a file has been opened, the pixels of a
grid it cannot reach are known: the mosaic does not read an item that cannot reach an
undecided pixel, and tiles at the edge of a collection stop early too.

:func:`reach` is exact: a grid well inside or well outside a raster is decided from
outlines; a grid across its edge is read, through the same rio-tiler call as a real
read, from a VRT with the raster's georeferencing and no data source (every pixel valid),
so the pixels it fills are exactly those a read of the real file can fill.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rasterio.warp import transform_geom
from rio_tiler.errors import RioTilerError
from rio_tiler.io import Reader
from shapely.geometry import box, shape

from tiler.catalog.models import Item
from tiler.engine.grids import Grid, PointGrid

#: output pixels around a grid within which a raster counts as touching it (resampling)
MARGIN = 4


@dataclass(frozen=True)
class Raster:
    """A file's raster georeferencing."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel width and height (positive)."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the file's CRS."""
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    def vrt(self) -> bytes:
        """A VRT with this georeferencing and no source: every pixel valid.

        It has virtual overviews, so rio-tiler reads it as it reads a COG.
        """
        gt = ", ".join(repr(v) for v in self.transform.to_gdal())
        return (
            f'<VRTDataset rasterXSize="{self.width}" rasterYSize="{self.height}">'
            f"<SRS>{self.crs.to_wkt()}</SRS><GeoTransform>{gt}</GeoTransform>"
            '<VRTRasterBand dataType="Byte" band="1"/>'
            f"<OverviewList>{' '.join(str(f) for f in self.overview_factors())}</OverviewList>"
            "</VRTDataset>"
        ).encode()

    def overview_factors(self) -> list[int]:
        """Virtual overview factors down to 256 pixels (as a COG's internal overviews)."""
        factors, f = [], 2
        while max(self.width, self.height) // f >= 256:
            factors.append(f)
            f *= 2
        return factors or [2]


class ExtentCache:
    """The rasters of files seen, at most ``size`` (least recently learned out)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._rasters: OrderedDict[str, Raster] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rasters)

    def __contains__(self, href: object) -> bool:
        return href in self._rasters

    def learn(self, href: str, crs: CRS | None, transform: Affine, width: int, height: int) -> None:
        """Remember ``href``'s raster (files without a CRS are not remembered)."""
        if crs is None or not transform.is_rectilinear or self.size <= 0:
            return
        if href in self._rasters:
            return
        with self._lock:
            self._rasters[href] = Raster(crs, transform, width, height)
            while len(self._rasters) > self.size:
                self._rasters.popitem(last=False)

    def get(self, href: str) -> Raster | None:
        """``href``'s raster, if known."""
        return self._rasters.get(href)


def _frame(grid: Grid) -> tuple[CRS, tuple[float, float, float, float]] | None:
    """The grid's CRS and bounds (None: a point, not worth a mask)."""
    if isinstance(grid, PointGrid):
        return None
    frame = grid.empty(1, "uint8")
    if frame.bounds is None or frame.crs is None:
        return None
    b = frame.bounds
    return frame.crs, (b[0], b[1], b[2], b[3])


def reach(grid: Grid, raster: Raster, read_options: dict[str, Any]) -> numpy.ndarray | None:
    """The pixels of ``grid`` a read of a file with ``raster`` can fill (None: all).

    Args:
        grid: the output grid.
        raster: the file's georeferencing.
        read_options: the read's keyword arguments (resampling methods).
    """
    frame = _frame(grid)
    if frame is None:
        return None
    crs, bounds = frame
    left, bottom, right, top = bounds
    pad = MARGIN * max((right - left) / grid.width, (top - bottom) / grid.height)
    try:
        outline = box(*raster_bounds(raster)).segmentize(
            max(raster.width, raster.height) * abs(raster.transform.a) / 32
        )
        footprint = shape(transform_geom(raster.crs, crs, outline.__geo_interface__))
    except (RasterioError, ValueError):  # not transformable here: no claim
        return None
    if not footprint.is_valid or footprint.is_empty:
        return None
    wide = box(left - pad, bottom - pad, right + pad, top + pad)
    if footprint.contains(wide):
        return None
    if not footprint.intersects(wide):
        return numpy.zeros((grid.height, grid.width), dtype=bool)
    return _read_reach(grid, raster, read_options)


def raster_bounds(raster: Raster) -> tuple[float, float, float, float]:
    """The raster's bounds in its CRS."""
    t = raster.transform
    xs = (t.c, t.c + t.a * raster.width)
    ys = (t.f, t.f + t.e * raster.height)
    return min(xs), min(ys), max(xs), max(ys)


def _read_reach(grid: Grid, raster: Raster, read_options: dict[str, Any]) -> numpy.ndarray:
    """The valid pixels of a read of an all-valid raster with ``raster``'s georeferencing."""
    options: dict[str, Any] = {"tms": grid.tms} if grid.tms is not None else {}
    try:
        with (
            MemoryFile(raster.vrt(), ext=".vrt") as memfile,
            memfile.open() as ds,
            Reader(None, dataset=ds, **options) as src,
        ):
            array = grid.read(src, [1], **read_options)
    except RioTilerError:  # e.g. TileOutsideBounds
        return numpy.zeros((grid.height, grid.width), dtype=bool)
    valid: numpy.ndarray = ~numpy.ma.getmaskarray(array)[0]
    return valid


def item_reach(
    item: Item,
    names: Sequence[str],
    grid: Grid,
    cache: ExtentCache,
    read_options: dict[str, Any],
    memo: dict[Raster, numpy.ndarray | None],
) -> numpy.ndarray | None:
    """The pixels of ``grid`` where ``item`` can have a value of every band ``names``.

    None (all pixels) unless the raster of each of their files is known. ``memo`` keeps
    the answers for rasters already seen (items of one grid share them).
    """
    masks = []
    for name in names:
        band = item.bands.get(name)
        if band is None:
            continue
        raster = cache.get(band.href)
        if raster is None:
            return None
        if raster not in memo:
            memo[raster] = reach(grid, raster, read_options)
        mask = memo[raster]
        if mask is not None:
            masks.append(mask)
    if not masks:
        return None
    both: numpy.ndarray = numpy.logical_and.reduce(masks)
    return both
