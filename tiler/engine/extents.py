"""Raster extents: which pixels of a grid an item can have data at, before reading it.

A file's raster extent is a hard bound of where its pixels land on any grid (an item's
footprint geometry is only a selector). Extents are learned from the headers of the
files read (:class:`ExtentCache`, fed by :class:`~tiler.engine.io.ItemReader`), so once a
file has been opened, a grid's pixels outside it are known to stay out of its reach: the
mosaic does not read an item that cannot reach an undecided pixel, and edge tiles stop
early too.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy
from morecantile import Tile
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds

from tiler.catalog.models import Item
from tiler.engine.grids import Grid, PartGrid, TileGrid

Bounds = tuple[float, float, float, float]

#: output pixels added around a transformed extent (resampling kernels, rounding)
MARGIN = 2


class ExtentCache:
    """The raster extent (CRS, bounds) of files seen, at most ``size`` (least recent out)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._extents: OrderedDict[str, tuple[CRS, Bounds]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._extents)

    def learn(self, href: str, crs: CRS | None, bounds: Sequence[float]) -> None:
        """Remember ``href``'s extent (files without a CRS are not remembered)."""
        if crs is None or self.size <= 0:
            return
        with self._lock:
            self._extents[href] = (crs, (bounds[0], bounds[1], bounds[2], bounds[3]))
            self._extents.move_to_end(href)
            while len(self._extents) > self.size:
                self._extents.popitem(last=False)

    def get(self, href: str) -> tuple[CRS, Bounds] | None:
        """``href``'s extent, if known."""
        return self._extents.get(href)


def _grid_frame(grid: Grid) -> tuple[CRS, Bounds] | None:
    """The grid's CRS and bounds (None: a grid whose pixels are not worth a mask)."""
    if isinstance(grid, TileGrid):
        b = grid.tms.xy_bounds(Tile(grid.x, grid.y, grid.z))
        return grid.tms.rasterio_crs, (b.left, b.bottom, b.right, b.top)
    if isinstance(grid, PartGrid):
        bbox = grid.bbox
        if grid.bounds_crs != grid.dst_crs:
            bbox = transform_bounds(grid.bounds_crs, grid.dst_crs, *bbox, densify_pts=21)
        return grid.dst_crs, (bbox[0], bbox[1], bbox[2], bbox[3])
    return None


def reach(grid: Grid, extents: Sequence[tuple[CRS, Bounds]]) -> numpy.ndarray | None:
    """The pixels of ``grid`` that rasters with ``extents`` can reach (None: all of them).

    Each extent is transformed to the grid's CRS (densified edges) and widened by
    :data:`MARGIN` pixels, so the answer is a superset of the pixels a read can fill.
    """
    frame = _grid_frame(grid)
    if frame is None or not extents:
        return None
    crs, (left, bottom, right, top) = frame
    xres = (right - left) / grid.width
    yres = (top - bottom) / grid.height
    out = numpy.zeros((grid.height, grid.width), dtype=bool)
    for src_crs, bounds in extents:
        try:
            b = (
                bounds
                if src_crs == crs
                else transform_bounds(src_crs, crs, *bounds, densify_pts=21)
            )
        except (RasterioError, ValueError):  # not transformable here: assume it reaches all
            return None
        if not all(math.isfinite(v) for v in b) or b[0] > b[2] or b[1] > b[3]:
            return None  # e.g. across the antimeridian: no claim
        c0 = max(math.floor((b[0] - left) / xres) - MARGIN, 0)
        c1 = min(math.ceil((b[2] - left) / xres) + MARGIN, grid.width)
        r0 = max(math.floor((top - b[3]) / yres) - MARGIN, 0)
        r1 = min(math.ceil((top - b[1]) / yres) + MARGIN, grid.height)
        if c0 < c1 and r0 < r1:
            out[r0:r1, c0:c1] = True
    return out


def item_reach(
    item: Item, names: Sequence[str], grid: Grid, cache: ExtentCache
) -> numpy.ndarray | None:
    """The pixels of ``grid`` where ``item`` can have a value of every band ``names``.

    None (all pixels) unless the extent of each of their files is known.
    """
    extents = []
    for name in names:
        band = item.bands.get(name)
        if band is None:
            continue
        extent = cache.get(band.href)
        if extent is None:
            return None
        extents.append(extent)
    if not extents:
        return None
    masks = [reach(grid, [e]) for e in dict.fromkeys(extents)]
    if any(m is None for m in masks):
        return None
    both: numpy.ndarray = numpy.logical_and.reduce([m for m in masks if m is not None])
    return both
