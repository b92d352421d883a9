"""Reads that only copy source pixels, done as a gather through a warped index.

With nearest-neighbour resampling a reprojected read only copies source pixels, so the
same rio-tiler call on an *index raster* (same size, georeferencing, overview sizes and
band count as the file; each pixel's value is its position, offset by its overview level)
says which source pixel, of which level, lands on each output pixel. That
warp is done once per raster layout and grid and shared by every file of that layout (the
items of one tile grid, and their bands), then each file's values are gathered from the
few source pixels it names: exact by construction. The index raster costs nothing to
make (:mod:`tiler.engine.warped_index`).

A grid much larger than the raster (a z0 tile over a 30 km collection) is always gathered:
its own warp costs a coordinate transformation per output pixel per file. Other
reprojected reads are gathered from the first read of a layout onto a grid when the
engine's cache is bound (a tile reads many files of a layout: the index warp, ~1.6 times
a read, is paid once), from the second with ``first_read_direct``; outside an engine
nothing is kept, and only the large grids are gathered.

:class:`SparseReads` keeps the index rasters and the warped indexes (bounded LRUs,
thread-safe); the engine owns one (:class:`~tiler.engine.io.ItemReader` binds it around a
read with :meth:`SparseReads.bound`). :func:`sparse_read` is what grids call.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import numpy
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from rio_tiler.io import Reader

from tiler.engine.warped_index import IndexRaster, Level, LevelOpener, level_sizes


class Grid(Protocol):
    """What a sparse read needs of its output grid: its size, and a repr that names it."""

    @property
    def width(self) -> int:
        """Columns."""

    @property
    def height(self) -> int:
        """Rows."""


#: a grid is gathered at once when the raster covers less than this share of it
SPARSE_SHARE = 0.25
#: at most this many output pixels (times bands) are gathered unless the raster covers
#: little of the grid: GDAL's warper splits a warp that needs more memory than its limit
#: into chunks, and an index (4 bytes a pixel) must be split where the file's is
MAX_PIXELS = 1 << 20
_KWARGS = frozenset({"nodata", "resampling_method", "reproject_method"})
#: masks by a nodata value or none: no mask band, no alpha
_PLAIN_MASKS = frozenset({MaskFlags.nodata, MaskFlags.all_valid})


@dataclass
class _Seen:
    """What is known of reads of one layout onto one grid before its index is warped."""

    share: float
    reads: int = 0


def _weight(levels: tuple[Level, ...]) -> int:
    """Bytes held by a warped index's plan."""
    return sum(part.target.nbytes + part.source.nbytes for part in levels) + 200


def _eligible(src: Reader, kwargs: dict[str, Any], remote_ok: bool) -> bool:
    """A read that only copies source pixels, of a file masked by a nodata value (or NaN)."""
    ds: Any = src.dataset
    name = str(getattr(ds, "name", ""))
    nodata = kwargs.get("nodata", ds.nodata)
    return (
        set(kwargs) <= _KWARGS
        and kwargs.get("resampling_method", "nearest") == "nearest"
        and kwargs.get("reproject_method", "nearest") == "nearest"
        and nodata is not None
        and ds.crs is not None
        and ds.transform.is_rectilinear
        and ColorInterp.alpha not in ds.colorinterp
        and isinstance(ds, rasterio.io.DatasetReader)
        and not src.options
        and (remote_ok or ("://" not in name and not name.startswith("/vsi")))
        and len(set(ds.dtypes)) == 1
        and _holds(nodata, ds.dtypes[0])
        and all(set(flags) <= _PLAIN_MASKS for flags in ds.mask_flag_enums)
    )


def _holds(value: float, dtype: str) -> bool:
    """Whether ``dtype`` holds ``value`` exactly."""
    kind = numpy.dtype(dtype)
    if kind.kind in "iu":
        info = numpy.iinfo(kind)
        return math.isfinite(value) and bool(info.min <= value <= info.max and value == int(value))
    if kind.kind == "f" and math.isnan(value):
        return True
    return kind.kind == "f" and bool(numpy.asarray(value, dtype=kind) == value)


def _share(ds: Any, frame: tuple[CRS, tuple[float, float, float, float]]) -> float:
    """The share of the grid's area the raster's outline can cover (1.0: unknown)."""
    crs, (left, bottom, right, top) = frame
    try:
        w, s, e, n = transform_bounds(ds.crs, crs, *ds.bounds, densify_pts=21)
    except (RasterioError, ValueError):
        return 1.0
    area = (right - left) * (top - bottom)
    if not all(math.isfinite(v) for v in (w, s, e, n)) or w >= e or s >= n or area <= 0:
        return 1.0
    inside = max(0.0, min(e, right) - max(w, left)) * max(0.0, min(n, top) - max(s, bottom))
    return float(inside / area)


def _reopen(ds: Any) -> LevelOpener:
    """Opens ``ds``'s overview levels anew (reads outside an engine)."""
    return lambda k: rasterio.open(ds.name, overview_level=k)


class _LRU:
    """A bounded, thread-safe LRU whose values are made once (other threads wait).

    Args:
        size: entries kept at most.
        weight: bytes kept at most, by ``weigh(value)`` (0: no bound by bytes).
        weigh: a value's bytes.
    """

    def __init__(
        self, size: int, weight: int = 0, weigh: Callable[[Any], int] | None = None
    ) -> None:
        self.size = size
        self.weight = weight
        self._weigh = weigh or (lambda value: 0)
        self._held = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._making: dict[tuple[Any, ...], threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    @property
    def held(self) -> int:
        """Bytes held (by ``weigh``)."""
        return self._held

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """``self[key]``, made by ``make()`` if absent."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                value = make()
                weight = self._weigh(value)
                with self._lock:
                    self._items[key] = value
                    self._held += weight
                    while len(self._items) > self.size or (
                        self.weight and self._held > self.weight and len(self._items) > 1
                    ):
                        _, old = self._items.popitem(last=False)
                        self._held -= self._weigh(old)
            finally:
                with self._lock:
                    self._making.pop(key, None)
        return value


class SparseReads:
    """Index rasters per layout and warped indexes per (layout, grid), bounded and shared.

    Args:
        layouts: index rasters kept (one per raster layout: CRS, transform, level sizes).
        plans: warped indexes kept, per (layout, grid, options, bands): a tile's grid meets
            a few layouts; each holds 8 bytes per pixel of the grid the file covers.
        plan_bytes: bytes of warped indexes kept at most (0.5 MB for a 256 px tile at most).
        first_read_direct: the first read of a layout onto a grid is rio-tiler's own (the
            second warps the index): a grid reading one file of a layout pays no index
            warp, one reading several pays one more warp. Measured on tiles of issue 19's
            collection (benchmarks/README.md), warping at the first read is cheaper.
    """

    def __init__(
        self,
        layouts: int = 64,
        plans: int = 256,
        plan_bytes: int = 64 << 20,
        first_read_direct: bool = False,
    ) -> None:
        self.layouts = _LRU(layouts)
        self.plans = _LRU(plans, plan_bytes, _weight)
        self.seen = _LRU(4 * plans)
        self.first_read_direct = first_read_direct
        self._count_lock = threading.Lock()
        #: reads answered by a gather (not by rio-tiler's own warp)
        self.gathered = 0
        self._levels: ContextVar[LevelOpener | None] = ContextVar("levels", default=None)

    def forget_grids(self) -> None:
        """Forget the warped indexes, keep the index rasters (a benchmark's new tile)."""
        self.plans = _LRU(self.plans.size, self.plans.weight, _weight)
        self.seen = _LRU(self.seen.size)

    @contextmanager
    def bound(self, open_level: LevelOpener | None = None) -> Iterator[None]:
        """Make :func:`sparse_read` use this cache (and ``open_level``) while the block runs.

        Args:
            open_level: opens an overview level of the file read (its handle is kept by the
                caller); None: overview levels are opened anew by name, local files only.
        """
        token = _current.set(self)
        level_token = self._levels.set(open_level)
        try:
            yield
        finally:
            self._levels.reset(level_token)
            _current.reset(token)

    def read(
        self,
        grid: Grid,
        frame: tuple[CRS, tuple[float, float, float, float]],
        src: Reader,
        indexes: list[int],
        kwargs: dict[str, Any],
        call: Callable[..., numpy.ma.MaskedArray],
    ) -> numpy.ma.MaskedArray:
        """See :func:`sparse_read`."""
        ds: Any = src.dataset
        opener = self._levels.get()
        if ds.crs == frame[0] or not _eligible(src, kwargs, opener is not None):
            return call(src, indexes, **kwargs)  # no reprojection, or not a plain copy
        open_level = opener if opener is not None else _reopen(ds)
        layout: tuple[Any, ...] = (ds.crs.to_wkt(), tuple(ds.transform), ds.width, ds.height)
        layout += (tuple(ds.overviews(1)), ds.count)
        options = tuple(sorted((k, v) for k, v in kwargs.items() if k != "nodata"))
        # the repr names the grid; the frame and size too (two custom tile matrix sets may
        # have the same repr)
        where = (frame[0].to_wkt(), tuple(frame[1]), grid.width, grid.height)
        key = (repr(grid), where, layout, options, tuple(indexes))
        seen: _Seen = self.seen.get(key, lambda: _Seen(_share(ds, frame)))
        with self._count_lock:
            seen.reads += 1
            first = seen.reads == 1
        if seen.share >= SPARSE_SHARE and (
            (first and self.first_read_direct)
            or grid.width * grid.height * len(indexes) > MAX_PIXELS
        ):
            return call(src, indexes, **kwargs)  # one read of a layout, or a large grid

        def index() -> IndexRaster | None:
            sizes = level_sizes(ds, open_level)
            return None if sizes is None else IndexRaster(ds, sizes)

        raster: IndexRaster | None = self.layouts.get(layout, index)
        if raster is None:
            return call(src, indexes, **kwargs)
        levels: tuple[Level, ...] = self.plans.get(
            key, lambda: self._warp(raster, src, call, kwargs, indexes)
        )
        nodata = kwargs.get("nodata", ds.nodata)
        out = _gather(ds, raster.sizes, levels, indexes, nodata, grid, open_level)
        if out is None:  # an overview of another size than the layout's first file's
            return call(src, indexes, **kwargs)
        with self._count_lock:
            self.gathered += 1
        return out

    @staticmethod
    def _warp(
        raster: IndexRaster,
        src: Reader,
        call: Callable[..., numpy.ma.MaskedArray],
        kwargs: dict[str, Any],
        indexes: list[int],
    ) -> tuple[Level, ...]:
        options = {k: v for k, v in kwargs.items() if k != "nodata"}
        with raster.vrt.open() as vrt, Reader(None, dataset=vrt, tms=src.tms) as isrc:
            values = call(isrc, indexes, nodata=0, **options)
        return raster.plan(values)


_current: ContextVar[SparseReads | None] = ContextVar("sparse_reads", default=None)


def sparse_read(
    grid: Grid,
    frame: tuple[CRS, tuple[float, float, float, float]],
    src: Reader,
    indexes: list[int],
    kwargs: dict[str, Any],
    call: Callable[..., numpy.ma.MaskedArray],
) -> numpy.ma.MaskedArray:
    """``call(src, indexes, **kwargs)``, as a gather where that is the same and cheaper.

    Reprojected nearest-neighbour reads of a file masked by a nodata value are warped once
    per raster layout and grid on an index raster, then gathered (see the module); any
    other read is ``call`` itself. The cache is the :class:`SparseReads` bound by the
    caller (:meth:`SparseReads.bound`); without one, a read keeps nothing.

    Args:
        grid: the output grid (its repr is part of the cache key).
        frame: the grid's CRS and bounds.
        src: the file's reader.
        indexes: bands.
        kwargs: read options.
        call: the rio-tiler read of the grid.
    """
    reads = _current.get()
    if reads is None:  # nothing is kept: gather only what rio-tiler would warp at length
        reads = SparseReads(layouts=1, plans=1, first_read_direct=True)
    return reads.read(grid, frame, src, indexes, kwargs, call)


def _gather(
    ds: Any,
    sizes: list[tuple[int, int]],
    levels: tuple[Level, ...],
    indexes: list[int],
    nodata: float,
    grid: Grid,
    open_level: LevelOpener,
) -> numpy.ma.MaskedArray | None:
    """The file's values at the source pixels ``levels`` name, on the grid.

    None: an overview level read is not of the size the index raster has for it (files
    whose overviews were made by other tools can share a layout's size and factors).
    """
    dtype = numpy.dtype(ds.dtypes[indexes[0] - 1])
    count = len(indexes)
    data = numpy.full((count, grid.height * grid.width), nodata, dtype=dtype)
    for part in levels:
        if part.level == 0:
            block = ds.read(indexes, window=part.window)
        else:
            with open_level(part.level - 1) as level:
                if (level.width, level.height) != sizes[part.level]:
                    return None
                block = level.read(indexes, window=part.window)
        data[:, part.target] = block.reshape(count, -1)[:, part.source]
    data = data.reshape(count, grid.height, grid.width)
    if math.isnan(nodata):
        return numpy.ma.MaskedArray(data, mask=numpy.isnan(data))
    return numpy.ma.MaskedArray(data, mask=data == numpy.asarray(nodata, dtype=dtype))
