"""Sparse reads: a grid much larger than a file's raster (a z0 tile over a 30 km collection).

A read of such a grid costs a coordinate transformation per output pixel (PROJ, in GDAL's
warper), whatever the file covers: ~0.6-0.9 s for a 1024 px world tile, per file and
band. With nearest-neighbour resampling a read only copies source pixels, so the
same call on an *index raster* (same size, georeferencing and overviews as the file;
each pixel's value is its own position) says which source pixel (of which overview
level) lands on each output pixel. That warp is done once per raster layout and grid and
shared by every file of that layout (the items of one tile grid), then each file's
values are gathered from the few source pixels it names: exact by construction.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from xml.sax.saxutils import escape

import numpy
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from rio_tiler.io import Reader


class Grid(Protocol):
    """What a sparse read needs of its output grid: its size, and a repr that names it."""

    @property
    def width(self) -> int:
        """Columns."""

    @property
    def height(self) -> int:
        """Rows."""


#: a grid is read sparsely when the raster covers less than this share of it
SPARSE_SHARE = 0.25
#: largest raster (pixels of all levels) an index raster is made for
MAX_INDEX_PIXELS = 1 << 28
_INDEX_ROWS = 256
_KWARGS = frozenset({"nodata", "resampling_method", "reproject_method"})
#: masks by a nodata value or none: no mask band, no alpha
_PLAIN_MASKS = frozenset({MaskFlags.nodata, MaskFlags.all_valid})

_lock = threading.Lock()
_layouts: OrderedDict[tuple[Any, ...], _IndexRaster | None] = OrderedDict()
_reads: OrderedDict[tuple[Any, ...], _Sparse] = OrderedDict()
_key_locks: dict[tuple[Any, ...], threading.Lock] = {}


@dataclass(frozen=True)
class _Sparse:
    """Where a sparse read's valid pixels are, and which source pixels they copy."""

    rows: numpy.ndarray  # output rows of the valid pixels
    cols: numpy.ndarray  # output columns
    level: numpy.ndarray  # 0: full resolution, k: the k-th overview
    source: numpy.ndarray  # flat position in that level


class _IndexRaster:
    """A VRT in /vsimem whose pixel values are ``offset[level] + position + 1`` (0: none)."""

    def __init__(self, ds: Any, sizes: list[tuple[int, int]]) -> None:
        self.sizes = sizes
        self.offsets = numpy.cumsum([0] + [w * h for w, h in sizes])
        self.files = [self._level(k, w, h) for k, (w, h) in enumerate(sizes)]
        w0, h0 = sizes[0]
        gt = ", ".join(repr(v) for v in ds.transform.to_gdal())
        overviews = "".join(
            f"<Overview><SourceFilename>{f.name}</SourceFilename><SourceBand>1</SourceBand>"
            "</Overview>"
            for f in self.files[1:]
        )
        self.vrt = MemoryFile(
            (
                f'<VRTDataset rasterXSize="{w0}" rasterYSize="{h0}">'
                f"<SRS>{escape(ds.crs.to_wkt())}</SRS><GeoTransform>{gt}</GeoTransform>"
                '<VRTRasterBand dataType="UInt32" band="1"><NoDataValue>0</NoDataValue>'
                f"<SimpleSource><SourceFilename>{self.files[0].name}</SourceFilename>"
                "<SourceBand>1</SourceBand></SimpleSource>"
                f"{overviews}</VRTRasterBand></VRTDataset>"
            ).encode(),
            ext=".vrt",
        )

    def _level(self, k: int, width: int, height: int) -> MemoryFile:
        mem = MemoryFile(ext=".tif")
        profile = {"driver": "GTiff", "width": width, "height": height, "count": 1}
        profile |= {"dtype": "uint32", "compress": "deflate", "predictor": 2}
        with mem.open(**profile) as dst:  # sequential numbers: deflate makes them tiny
            first = int(self.offsets[k]) + 1
            for row in range(0, height, _INDEX_ROWS):
                rows = min(_INDEX_ROWS, height - row)
                start = first + row * width
                block = numpy.arange(start, start + rows * width, dtype="uint32")
                dst.write(block.reshape(1, rows, width), window=((row, row + rows), (0, width)))
        return mem

    def decode(self, values: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(level, flat position in that level) of index values (all > 0)."""
        flat = values.astype("int64") - 1
        level = numpy.searchsorted(self.offsets, flat, side="right") - 1
        return level, flat - self.offsets[level]


def _index_raster(ds: Any) -> _IndexRaster | None:
    """The index raster of ``ds``'s layout (None: its bands' overviews differ, or too large)."""
    factors = {tuple(ds.overviews(i)) for i in ds.indexes}
    if len(factors) != 1:
        return None
    sizes = [(ds.width, ds.height)]
    for k in range(len(next(iter(factors)))):
        with rasterio.open(ds.name, overview_level=k) as level:
            sizes.append((level.width, level.height))
    if sum(w * h for w, h in sizes) > MAX_INDEX_PIXELS:
        return None
    return _IndexRaster(ds, sizes)


def _eligible(src: Reader, kwargs: dict[str, Any]) -> bool:
    """A read that only copies source pixels, of a local file masked by a nodata value."""
    ds: Any = src.dataset
    name = str(getattr(ds, "name", ""))
    nodata = kwargs.get("nodata", ds.nodata)
    return (
        set(kwargs) <= _KWARGS
        and kwargs.get("resampling_method", "nearest") == "nearest"
        and kwargs.get("reproject_method", "nearest") == "nearest"
        and nodata is not None
        and math.isfinite(nodata)
        and ds.crs is not None
        and ds.transform.is_rectilinear
        and ColorInterp.alpha not in ds.colorinterp
        and isinstance(ds, rasterio.io.DatasetReader)
        and not src.options
        and "://" not in name
        and not name.startswith("/vsi")
        and len(set(ds.dtypes)) == 1
        and _holds(nodata, ds.dtypes[0])
        and all(set(flags) <= _PLAIN_MASKS for flags in ds.mask_flag_enums)
    )


def _holds(value: float, dtype: str) -> bool:
    """Whether ``dtype`` holds ``value`` exactly."""
    kind = numpy.dtype(dtype)
    if kind.kind in "iu":
        info = numpy.iinfo(kind)
        return bool(info.min <= value <= info.max and value == int(value))
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


def _cached(cache: OrderedDict[tuple[Any, ...], Any], key: tuple[Any, ...], make: Any) -> Any:
    """``cache[key]``, made once (other threads wait for it), at most 8 kept."""
    with _lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        with _lock:
            if key in cache:
                return cache[key]
        try:
            value = make()
            with _lock:
                cache[key] = value
                while len(cache) > 8:
                    cache.popitem(last=False)
        finally:
            with _lock:
                _key_locks.pop(key, None)
    return value


def sparse_read(
    grid: Grid,
    frame: tuple[CRS, tuple[float, float, float, float]],
    src: Reader,
    indexes: list[int],
    kwargs: dict[str, Any],
    call: Callable[..., numpy.ma.MaskedArray],
) -> numpy.ma.MaskedArray:
    """``call(src, indexes, **kwargs)``, at the cost of the pixels the file covers.

    Reads of a grid the file covers less than :data:`SPARSE_SHARE` of are done once on an
    index raster of the file's layout (shared by every file of that layout), then
    gathered; any other read is ``call`` itself.

    Args:
        grid: the output grid (part of the cache key).
        frame: the grid's CRS and bounds.
        src: the file's reader.
        indexes: bands.
        kwargs: read options.
        call: the rio-tiler read of the grid.
    """
    ds: Any = src.dataset
    if not _eligible(src, kwargs) or ds.crs == frame[0] or _share(ds, frame) >= SPARSE_SHARE:
        return call(src, indexes, **kwargs)  # no reprojection, or a grid the file covers
    layout = (ds.crs.to_wkt(), tuple(ds.transform), ds.width, ds.height, tuple(ds.overviews(1)))
    index: _IndexRaster | None = _cached(_layouts, layout, lambda: _index_raster(ds))
    if index is None:
        return call(src, indexes, **kwargs)
    options = {k: v for k, v in kwargs.items() if k != "nodata"}
    key = (repr(grid), layout, tuple(sorted(options.items())))

    def warp() -> _Sparse:
        with index.vrt.open() as vrt, Reader(None, dataset=vrt, tms=src.tms) as isrc:
            values = call(isrc, [1], nodata=0, **options)
        valid = ~numpy.ma.getmaskarray(values)[0]
        rows, cols = numpy.nonzero(valid)
        level, source = index.decode(values.data[0][valid])
        return _Sparse(rows.astype("int32"), cols.astype("int32"), level.astype("int8"), source)

    sparse: _Sparse = _cached(_reads, key, warp)
    return _gather(ds, sparse, index, indexes, kwargs.get("nodata", ds.nodata), grid)


def _gather(
    ds: Any,
    sparse: _Sparse,
    index: _IndexRaster,
    indexes: list[int],
    nodata: float,
    grid: Grid,
) -> numpy.ma.MaskedArray:
    """The file's values at the source pixels ``sparse`` names, on the grid."""
    dtype = numpy.dtype(ds.dtypes[indexes[0] - 1])
    shape = (len(indexes), grid.height, grid.width)
    data = numpy.full(shape, nodata, dtype=dtype)
    for k in numpy.unique(sparse.level):
        at = sparse.level == k
        width = index.sizes[k][0]
        rows, cols = numpy.divmod(sparse.source[at], width)
        r0, c0 = int(rows.min()), int(cols.min())
        window = ((r0, int(rows.max()) + 1), (c0, int(cols.max()) + 1))
        if k == 0:
            block = ds.read(indexes, window=window)
        else:
            with rasterio.open(ds.name, overview_level=int(k) - 1) as level:
                block = level.read(indexes, window=window)
        data[:, sparse.rows[at], sparse.cols[at]] = block[:, rows - r0, cols - c0]
    return numpy.ma.MaskedArray(data, mask=data == numpy.asarray(nodata, dtype=dtype))
