"""The output grid of an export, its chunks, and how one file is read onto a chunk.

A chunk's grid is exactly its sub-window of the whole grid: the same CRS, the same pixel
size, an origin on the whole grid's pixel corners. An item in the grid's CRS is read with
rio-tiler's ``Reader.part`` as a window (on a grid aligned to the file's pixels: a pure
windowed copy). An item in another CRS is warped straight onto the chunk's pixels with
GDAL's transformer at
its exact precision (:data:`EXACT`): the approximate one interpolates the
transformation along each chunk's rows, and rio-tiler's own warp grid depends on the read
bounds, so both would make a pixel depend on the chunk it falls in. Each pixel's source
pixel then depends on its own position only, and the chunks tile the grid seamlessly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform, transform_bounds
from rio_tiler.constants import WGS84_CRS
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from tiler.engine.extents import Raster
from tiler.engine.sparse import sparse_read

#: the output's internal tile size (chunks are multiples of it)
BLOCK = 512
#: the default chunk side in pixels
CHUNK = 1024
#: GDAL's transformer error allowed, in pixels: rasterio's WarpedVRT makes no transformer at
#: 0, and GDAL's approximate one computes every point exactly above this precision
EXACT = 1e-12
#: most pixels an export grid may have (a 2**31 side is GDAL's limit anyway)
MAX_SIDE = 1 << 20


class GridError(ValueError):
    """The region, CRS or resolution make no grid (empty, infinite or too large)."""


def _bounds(transform: Affine, width: int, height: int) -> tuple[float, float, float, float]:
    left, top = transform.c, transform.f
    return left, top + transform.e * height, left + transform.a * width, top


@dataclass(frozen=True)
class Window:
    """A chunk's place in the grid: column and row offsets, width and height in pixels."""

    col: int
    row: int
    width: int
    height: int

    @property
    def key(self) -> str:
        """A name for the chunk: ``r{row}_c{col}``."""
        return f"r{self.row}_c{self.col}"


@dataclass(frozen=True)
class ChunkGrid:
    """A chunk of an export grid (the engine's :class:`~tiler.engine.grids.Grid`)."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def tms(self) -> None:
        """Chunks need no tile matrix set."""
        return None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid's CRS."""
        return _bounds(self.transform, self.width, self.height)

    def warp_options(self) -> dict[str, Any]:
        """rio-tiler's ``vrt_options`` for a file in another CRS: warp onto these pixels."""
        return {
            "transform": self.transform,
            "width": self.width,
            "height": self.height,
            "tolerance": EXACT,
        }

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> numpy.ma.MaskedArray:
        """Bands ``indexes`` of ``src`` on the chunk, with ``Reader.part``."""
        bounds = self.bounds

        def part(reader: Reader, bands: list[int], **kw: Any) -> numpy.ma.MaskedArray:
            dataset: Any = reader.dataset
            if dataset.crs != self.crs:
                kw = {**kw, "vrt_options": self.warp_options()}
            img = reader.part(
                bounds,
                dst_crs=self.crs,
                bounds_crs=self.crs,
                width=self.width,
                height=self.height,
                indexes=bands,
                **kw,
            )
            return img.array

        return sparse_read(self, (self.crs, bounds), src, indexes, kwargs, part)

    def footprint(self) -> BaseGeometry:
        """The chunk's area in lon/lat (densified edges)."""
        bounds = self.bounds
        if self.crs != WGS84_CRS:
            bounds = transform_bounds(self.crs, WGS84_CRS, *bounds, densify_pts=21)
        return box(*bounds)

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A fully masked image on the chunk."""
        shape = (count, self.height, self.width)
        array = numpy.ma.MaskedArray(numpy.zeros(shape, dtype), mask=numpy.ones(shape, bool))
        return ImageData(array, bounds=self.bounds, crs=self.crs)


@dataclass(frozen=True)
class OutputGrid:
    """The whole export grid: north-up pixels of ``transform`` in ``crs``."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid's CRS."""
        return _bounds(self.transform, self.width, self.height)

    def chunk(self, window: Window) -> ChunkGrid:
        """The grid of ``window``: the same pixels as the whole grid's there."""
        transform = self.transform * Affine.translation(window.col, window.row)
        return ChunkGrid(self.crs, transform, window.width, window.height)

    def whole(self) -> ChunkGrid:
        """The whole grid as one chunk."""
        return self.chunk(Window(0, 0, self.width, self.height))

    def windows(self, chunk: int) -> list[Window]:
        """The chunks of ``chunk`` x ``chunk`` pixels (smaller at the right and bottom)."""
        return [
            Window(col, row, min(chunk, self.width - col), min(chunk, self.height - row))
            for row in range(0, self.height, chunk)
            for col in range(0, self.width, chunk)
        ]

    def footprint(self) -> BaseGeometry:
        """The grid's area in lon/lat (what the export's selection searches)."""
        return self.whole().footprint()

    def overview(self, factor: int) -> OutputGrid:
        """The grid of the overview of ``factor``, as GDAL sizes it.

        The same origin, pixels ``factor`` times larger, sides rounded up.
        """
        return OutputGrid(
            self.crs,
            self.transform * Affine.scale(factor),
            -(-self.width // factor),
            -(-self.height // factor),
        )


def overview_factors(width: int, height: int, block: int) -> list[int]:
    """The factors (2, 4, ...) of the overview levels GDAL's COG driver makes.

    For a raster of ``width`` x ``height`` px with ``block`` px internal tiles: one level
    more while a side of the last one (halved, rounded down, as the driver counts) is over
    ``block``.
    """
    factors: list[int] = []
    while width > block or height > block:
        width, height = max(width // 2, 1), max(height // 2, 1)
        factors.append(2 ** (len(factors) + 1))
    return factors


def most_common_crs(rasters: Sequence[Raster]) -> CRS:
    """The CRS most rasters have (ties: the first seen).

    Raises:
        GridError: no raster.
    """
    if not rasters:
        raise GridError("no item file could be read to choose the CRS: give --crs")
    counts = Counter(r.crs.to_wkt() for r in rasters)
    wkt = counts.most_common(1)[0][0]
    return next(r.crs for r in rasters if r.crs.to_wkt() == wkt)


def finest(rasters: Sequence[Raster], crs: CRS) -> tuple[float, float, Raster | None]:
    """The finest pixel size of ``rasters`` in ``crs``, and the raster it comes from.

    A raster in ``crs`` gives its own pixel size (and is returned, to align the grid to);
    one in another CRS its size as GDAL's default warp of the whole raster would have it.

    Raises:
        GridError: no raster.
    """
    best: tuple[float, float, Raster | None] | None = None
    for r in rasters:
        if r.crs == crs:
            xres, yres = r.resolution
            native: Raster | None = r
        else:
            t, _, _ = calculate_default_transform(r.crs, crs, r.width, r.height, *r.bounds)
            xres, yres, native = abs(t.a), abs(t.e), None
        if best is None or xres * yres < best[0] * best[1]:
            best = (xres, yres, native)
    if best is None:
        raise GridError("no item file could be read to choose the resolution: give --resolution")
    return best


def _snap(value: float, origin: float, step: float, up: bool) -> float:
    """``origin + k * step`` just below (or above) ``value``, a few ULPs tolerated."""
    k = (value - origin) / step
    n = math.ceil(k - 1e-9) if up else math.floor(k + 1e-9)
    return origin + n * step


def make_grid(
    bbox: tuple[float, float, float, float],
    bbox_crs: CRS,
    crs: CRS,
    resolution: tuple[float, float],
    align: Raster | None = None,
) -> OutputGrid:
    """The grid covering ``bbox`` in ``crs`` at ``resolution``.

    Corners snap outwards: to ``align``'s pixel corners when it is given and has this CRS and
    pixel size (a pure windowed copy of its files), else to multiples of the resolution.

    Raises:
        GridError: an empty or non-finite region, a resolution <= 0, or a grid over
            :data:`MAX_SIDE` pixels a side.
    """
    xres, yres = resolution
    if not (math.isfinite(xres) and math.isfinite(yres) and xres > 0 and yres > 0):
        raise GridError(f"resolution {xres}, {yres}: must be finite numbers > 0")
    left, bottom, right, top = bbox
    if bbox_crs != crs:
        left, bottom, right, top = transform_bounds(bbox_crs, crs, *bbox, densify_pts=21)
    if not all(math.isfinite(v) for v in (left, bottom, right, top)):
        raise GridError(f"bbox {bbox} has no finite bounds in {crs.to_string()}")
    if left >= right or bottom >= top:
        raise GridError(f"bbox {bbox} is empty: expected minx < maxx and miny < maxy")
    ox, oy = 0.0, 0.0
    if align is not None and align.crs == crs and align.resolution == (xres, yres):
        ox, oy = align.transform.c, align.transform.f
    x0, x1 = _snap(left, ox, xres, up=False), _snap(right, ox, xres, up=True)
    y1, y0 = _snap(top, oy, yres, up=True), _snap(bottom, oy, yres, up=False)
    width, height = round((x1 - x0) / xres), round((y1 - y0) / yres)
    if width > MAX_SIDE or height > MAX_SIDE:
        raise GridError(
            f"the grid would be {width} x {height} px: at most {MAX_SIDE} a side; "
            "use a coarser --resolution or a smaller --bbox"
        )
    return OutputGrid(crs, Affine(xres, 0.0, x0, 0.0, -yres, y1), max(width, 1), max(height, 1))
