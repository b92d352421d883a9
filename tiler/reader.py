"""Reads: one item's bands onto the output grid, and the two-pass quality mosaic.

Every read goes through rio-tiler's ``Reader.tile`` / ``Reader.part`` / ``Reader.point``, so
the pixels are exactly those of a naive per-item read (same overview choice, same warp).
The mosaic reads in two passes: the quality bands of every candidate item first, then the
output bands only of the items that won at least one pixel.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy
import rasterio
from morecantile import Tile, TileMatrixSet
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rio_tiler.errors import PointOutsideBounds, RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData, PointData
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from tiler.collection import Band, Item
from tiler.expression import Expression
from tiler.mosaic import NO_WINNER, QualityMosaicMethod

logger = logging.getLogger(__name__)

QUALITY, INDEX = "quality", "_index"
#: output bands that describe the winning item: acquisition time in days since 1970-01-01,
#: and day of year (1-366)
PROVENANCE: dict[str, Callable[[Item], float]] = {
    "_date": lambda item: item.days,
    "_doy": lambda item: float(item.datetime.timetuple().tm_yday),
}
DERIVED = (QUALITY, INDEX, *PROVENANCE)
_OUTSIDE = (TileOutsideBounds, PointOutsideBounds)
_ITEM_FAULTS = (RasterioError, RioTilerError, OSError, ValueError)

T = TypeVar("T")


@dataclass(frozen=True)
class ReadOptions:
    """Per-request read options (titiler's dataset parameters)."""

    resampling_method: str | None = None
    reproject_method: str | None = None
    unscale: bool = False
    nodata: float | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for rio-tiler's read methods."""
        out: dict[str, Any] = {}
        if self.resampling_method:
            out["resampling_method"] = self.resampling_method
        if self.reproject_method:
            out["reproject_method"] = self.reproject_method
        return out


class Grid(Protocol):
    """The output pixel grid of a request."""

    width: int
    height: int

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> ImageData:
        """Read bands ``indexes`` of ``src`` onto this grid."""
        ...

    def footprint(self) -> BaseGeometry:
        """The grid's area in lon/lat."""
        ...

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A fully masked image on this grid."""
        ...


@dataclass(frozen=True)
class TileGrid:
    """A tile of a TileMatrixSet."""

    tms: TileMatrixSet
    x: int
    y: int
    z: int
    tilesize: int = 256

    @property
    def width(self) -> int:  # noqa: D102
        return self.tilesize

    @property
    def height(self) -> int:  # noqa: D102
        return self.tilesize

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> ImageData:
        """Read with ``Reader.tile``."""
        return src.tile(self.x, self.y, self.z, tilesize=self.tilesize, indexes=indexes, **kwargs)

    def footprint(self) -> BaseGeometry:
        """Geographic bounds of the tile."""
        return box(*self.tms.bounds(Tile(self.x, self.y, self.z)))

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A fully masked tile."""
        bounds = self.tms.xy_bounds(Tile(self.x, self.y, self.z))
        shape = (count, self.tilesize, self.tilesize)
        arr = numpy.ma.MaskedArray(numpy.zeros(shape, dtype), mask=numpy.ones(shape, bool))
        return ImageData(arr, bounds=tuple(bounds), crs=self.tms.rasterio_crs)


@dataclass(frozen=True)
class PartGrid:
    """A bbox read onto ``width`` x ``height`` pixels in ``dst_crs``."""

    bbox: tuple[float, float, float, float]
    bounds_crs: CRS
    dst_crs: CRS
    width: int
    height: int
    geographic: tuple[float, float, float, float]

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> ImageData:
        """Read with ``Reader.part``."""
        return src.part(
            self.bbox,
            dst_crs=self.dst_crs,
            bounds_crs=self.bounds_crs,
            width=self.width,
            height=self.height,
            indexes=indexes,
            **kwargs,
        )

    def footprint(self) -> BaseGeometry:
        """Geographic bounds of the bbox."""
        return box(*self.geographic)

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A fully masked image."""
        from rasterio.warp import transform_bounds

        bounds = self.bbox
        if self.bounds_crs != self.dst_crs:
            bounds = transform_bounds(self.bounds_crs, self.dst_crs, *self.bbox, densify_pts=21)
        shape = (count, self.height, self.width)
        arr = numpy.ma.MaskedArray(numpy.zeros(shape, dtype), mask=numpy.ones(shape, bool))
        return ImageData(arr, bounds=tuple(bounds), crs=self.dst_crs)


class _OpenDatasets(threading.local):
    """Per-thread LRU of open datasets: reads reuse a handle and its GDAL block cache.

    A rasterio dataset is never shared between threads; each read thread keeps its own.
    """

    size = 32

    def __init__(self) -> None:
        self.lru: OrderedDict[str, rasterio.io.DatasetReader] = OrderedDict()

    def get(self, href: str) -> rasterio.io.DatasetReader:
        ds = self.lru.pop(href, None)
        if ds is None or ds.closed:
            ds = rasterio.open(href)
        self.lru[href] = ds
        while len(self.lru) > self.size:
            _, old = self.lru.popitem(last=False)
            old.close()
        return ds


_DATASETS = _OpenDatasets()


def open_reader(href: str, **options: Any) -> Reader:
    """A rio-tiler Reader over this thread's open handle of ``href``."""
    return Reader(href, dataset=_DATASETS.get(href), **options)


def _groups(item: Item, names: Sequence[str], opts: ReadOptions) -> dict[tuple, list[Band]]:
    """Bands to read grouped by (href, nodata, scale?) so each group is one read."""
    groups: dict[tuple, list[Band]] = defaultdict(list)
    for name in names:
        band = item.bands.get(name)
        if band is None:
            continue
        nodata = opts.nodata if opts.nodata is not None else band.nodata
        file_unscale = opts.unscale and band.scale is None and band.offset is None
        groups[(band.href, nodata, file_unscale)].append(band)
    return groups


def _unscale(data: numpy.ndarray, band: Band, opts: ReadOptions) -> numpy.ndarray:
    if not opts.unscale or (band.scale is None and band.offset is None):
        return data
    scale = 1.0 if band.scale is None else band.scale
    offset = 0.0 if band.offset is None else band.offset
    return data.astype("float64") * scale + offset


def read_item(
    item: Item,
    names: Sequence[str],
    grid: Grid,
    opts: ReadOptions,
    reader_options: dict[str, Any] | None = None,
) -> dict[str, numpy.ma.MaskedArray] | None:
    """Read bands ``names`` of ``item`` onto ``grid``.

    Args:
        item: the item.
        names: band names; names the item lacks are left out of the result.
        grid: the output grid.
        opts: read options.
        reader_options: options for ``rio_tiler.io.Reader``.

    Returns:
        2-D masked arrays by band name, or None if the item's rasters miss the grid.
    """
    out: dict[str, numpy.ma.MaskedArray] = {}
    kwargs = opts.kwargs()
    tms = getattr(grid, "tms", None)
    for (href, nodata, file_unscale), bands in _groups(item, names, opts).items():
        options = dict(reader_options or {})
        if tms is not None:
            options["tms"] = tms
        extra = dict(kwargs)
        if nodata is not None:
            extra["nodata"] = nodata
        if file_unscale:
            extra["unscale"] = True
        try:
            with open_reader(href, **options) as src:
                img = grid.read(src, [b.bidx for b in bands], **extra)
        except _OUTSIDE:
            return None
        mask = numpy.ma.getmaskarray(img.array)
        for i, band in enumerate(bands):
            out[band.name] = numpy.ma.MaskedArray(
                _unscale(img.array.data[i], band, opts), mask=mask[i]
            )
    return out


def item_quality(
    arrays: dict[str, numpy.ma.MaskedArray], expression: Expression
) -> numpy.ma.MaskedArray | None:
    """The quality of one item: masked where any band it reads is masked.

    Returns None when the item lacks one of the expression's bands.
    """
    if any(name not in arrays for name in expression.bands):
        return None
    mask = numpy.logical_or.reduce([numpy.ma.getmaskarray(arrays[n]) for n in expression.bands])
    value = expression.evaluate({n: numpy.ma.getdata(arrays[n]) for n in expression.bands})
    if value.shape != mask.shape:
        value = numpy.broadcast_to(value, mask.shape)
    return numpy.ma.MaskedArray(value, mask=mask)


@dataclass
class MosaicStats:
    """What a mosaic request did, for headers and logs."""

    considered: int = 0
    read: int = 0
    used: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    exited_early: bool = False


def run_bounded(
    pool: Executor,
    fn: Callable[[Item], T],
    items: Iterable[Item],
    window: int,
    timeout: float,
    on_error: Callable[[Item, str], None],
) -> Iterable[tuple[Item, T]]:
    """Run ``fn`` over ``items`` with at most ``window`` in flight; yield as they finish.

    Items whose call raises one of the item faults, or that take longer than ``timeout``
    seconds without any progress, are reported to ``on_error`` and skipped.
    """
    pending: dict[Future[T], Item] = {}
    source = iter(items)
    try:
        yield from _drain(pool, fn, source, pending, window, timeout, on_error)
    finally:  # the consumer stopped early: drop what has not started
        for fut in pending:
            fut.cancel()


def _drain(
    pool: Executor,
    fn: Callable[[Item], T],
    source: Iterator[Item],
    pending: dict[Future[T], Item],
    window: int,
    timeout: float,
    on_error: Callable[[Item, str], None],
) -> Iterator[tuple[Item, T]]:
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            try:
                item = next(source)
            except StopIteration:
                exhausted = True
                break
            pending[pool.submit(fn, item)] = item
        if not pending:
            return
        done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            for fut, item in pending.items():
                fut.cancel()
                on_error(item, f"timed out after {timeout:g} s")
            pending.clear()
            continue
        for fut in done:
            item = pending.pop(fut)
            try:
                yield item, fut.result()
            except _ITEM_FAULTS as exc:
                logger.warning("item %s skipped: %s", item.id, exc)
                on_error(item, f"{type(exc).__name__}: {exc}")


_UNSIGNED = ("uint8", "uint16", "uint32", "uint64")


def quality_bound(items: Sequence[Item], expression: Expression, opts: ReadOptions) -> float | None:
    """An upper bound of the quality valid for every item, from declared band types.

    Only unsigned types give a finite range (``-MSK_CLDPRB <= 0``); a band whose type an
    item does not declare, a nodata override or ``unscale`` give no bound.
    """
    if opts.unscale or opts.nodata is not None or not items:
        return None
    ranges: dict[str, tuple[float, float]] = {}
    for name in expression.bands:
        for item in items:
            band = item.bands.get(name)
            if band is None or band.data_type not in _UNSIGNED:
                return None
        ranges[name] = (0.0, math.inf)
    return expression.upper_bound(ranges)


def quality_mosaic(
    items: Sequence[Item],
    expression: Expression,
    out_bands: Sequence[str],
    grid: Grid,
    opts: ReadOptions,
    pool: Executor,
    *,
    window: int = 8,
    timeout: float = 30.0,
    reader_options: dict[str, Any] | None = None,
) -> tuple[ImageData, MosaicStats]:
    """The exact quality mosaic of ``items`` (in collection order) on ``grid``.

    Args:
        items: candidate items in collection order (position = tie-break order).
        expression: the quality expression.
        out_bands: output band names (band names, ``quality``, ``_index``, ``_date``,
            ``_doy``).
        grid: output grid.
        opts: read options.
        pool: executor for reads.
        window: reads in flight at once (bounds memory).
        timeout: seconds without progress after which pending reads are given up.
        reader_options: options for ``rio_tiler.io.Reader``.

    Returns:
        The image (bands = ``out_bands``; a pixel is masked where no item is a candidate or
        the winner's value of any output band is masked) and what was done.
    """
    stats = MosaicStats(considered=len(items))
    method = QualityMosaicMethod()
    position = {item.id: i for i, item in enumerate(items)}

    def skip(item: Item, reason: str) -> None:
        stats.skipped[item.id] = reason

    def phase1(item: Item) -> numpy.ma.MaskedArray | None:
        arrays = read_item(item, expression.bands, grid, opts, reader_options)
        return None if arrays is None else item_quality(arrays, expression)

    method.upper_bound = quality_bound(items, expression, opts)
    fed = [False] * len(items)
    unfed = 0  # smallest position not fed yet
    t0 = time.perf_counter()
    for item, quality in run_bounded(pool, phase1, items, window, timeout, skip):
        stats.read += 1
        i = position[item.id]
        if quality is not None:
            method.decide(quality, i)
        fed[i] = True
        while unfed < len(items) and fed[unfed]:
            unfed += 1
        # items are submitted in collection order, so every unread item comes after
        # `unfed`; once each pixel holds the bound from an earlier item, none can win
        method.note_pending(unfed if unfed < len(items) else None)
        if method.is_done:
            stats.exited_early = True
            break
    t1 = time.perf_counter()
    stats.timings["quality"] = (t1 - t0) * 1000

    physical = [b for b in out_bands if b not in DERIVED]
    winner = method.winner
    if winner is None:
        winner = numpy.full((grid.height, grid.width), NO_WINNER, dtype="int32")
    winners = [int(i) for i in numpy.unique(winner) if i != NO_WINNER]
    stats.used = [items[i].id for i in winners]

    if physical and winners:

        def phase2(item: Item) -> dict[str, numpy.ma.MaskedArray] | None:
            return read_item(item, physical, grid, opts, reader_options)

        chosen = [items[i] for i in winners]
        for item, arrays in run_bounded(pool, phase2, chosen, window, timeout, skip):
            method.fill(stack(arrays or {}, physical, winner.shape), position[item.id])
        # a winner whose read failed leaves its pixels masked (never filled from another)
    stats.timings["bands"] = (time.perf_counter() - t1) * 1000

    image = compose(out_bands, method, winner, items, grid)
    return image, stats


def stack(
    arrays: dict[str, numpy.ma.MaskedArray], names: Sequence[str], shape: tuple[int, ...]
) -> numpy.ma.MaskedArray:
    """3-D stack of bands ``names``; a band the item lacks is fully masked."""
    present = [arrays[n] for n in names if n in arrays]
    dtype = numpy.result_type(*[a.dtype for a in present]) if present else numpy.uint8
    data = numpy.zeros((len(names), *shape), dtype=dtype)
    mask = numpy.ones((len(names), *shape), dtype=bool)
    for i, name in enumerate(names):
        if name in arrays:
            data[i] = numpy.ma.getdata(arrays[name])
            mask[i] = numpy.ma.getmaskarray(arrays[name])
    return numpy.ma.MaskedArray(data, mask=mask)


def compose(
    out_bands: Sequence[str],
    method: QualityMosaicMethod,
    winner: numpy.ndarray,
    items: Sequence[Item],
    grid: Grid,
) -> ImageData:
    """Stack the output bands; mask a pixel where any output band of the winner is."""
    shape = winner.shape
    none = winner == NO_WINNER
    layers: list[numpy.ndarray] = []
    masks: list[numpy.ndarray] = [none]
    physical = [b for b in out_bands if b not in DERIVED]
    for name in out_bands:
        if name == QUALITY:
            best = method.best if method.best is not None else numpy.zeros(shape)
            layers.append(numpy.where(none, 0.0, best))
        elif name == INDEX:
            layers.append(numpy.where(none, 0, winner).astype("int32"))
        elif name in PROVENANCE:
            lookup = numpy.asarray([PROVENANCE[name](it) for it in items] or [0.0], "float64")
            layers.append(numpy.where(none, 0.0, lookup[numpy.where(none, 0, winner)]))
        elif method.mosaic is not None:
            k = physical.index(name)
            layers.append(method.mosaic.data[k])
            masks.append(numpy.ma.getmaskarray(method.mosaic)[k])
        else:  # no winner could be read
            layers.append(numpy.zeros(shape, dtype="uint8"))
            masks.append(numpy.ones(shape, dtype=bool))
    dtype = numpy.result_type(*[a.dtype for a in layers]) if layers else numpy.uint8
    data = numpy.stack([a.astype(dtype, copy=False) for a in layers])
    mask = numpy.logical_or.reduce(masks)
    data[:, mask] = 0
    template = grid.empty(1, "uint8")
    return ImageData(
        numpy.ma.MaskedArray(data, mask=numpy.broadcast_to(mask, data.shape).copy()),
        bounds=template.bounds,
        crs=template.crs,
        band_names=list(out_bands),
    )


@dataclass
class PointSeries:
    """Per-item values at a point and the winner."""

    winner: int | None
    quality: list[float | None]
    values: list[dict[str, float | None]]
    skipped: dict[str, str]


def point_series(
    items: Sequence[Item],
    expression: Expression,
    out_bands: Sequence[str],
    lon: float,
    lat: float,
    coord_crs: CRS,
    opts: ReadOptions,
    pool: Executor,
    *,
    window: int = 8,
    timeout: float = 30.0,
) -> PointSeries:
    """Every item's quality and band values at one point, and the mosaic's winner there."""
    physical = [b for b in out_bands if b not in DERIVED]
    names = list(dict.fromkeys([*expression.bands, *physical]))
    quality: list[float | None] = [None] * len(items)
    values: list[dict[str, float | None]] = [dict.fromkeys(physical) for _ in items]
    skipped: dict[str, str] = {}
    position = {item.id: i for i, item in enumerate(items)}
    method = QualityMosaicMethod()

    def read(item: Item) -> dict[str, numpy.ma.MaskedArray] | None:
        out: dict[str, numpy.ma.MaskedArray] = {}
        for (href, nodata, file_unscale), bands in _groups(item, names, opts).items():
            extra: dict[str, Any] = dict(opts.kwargs())
            extra.pop("reproject_method", None)
            if nodata is not None:
                extra["nodata"] = nodata
            if file_unscale:
                extra["unscale"] = True
            try:
                with open_reader(href) as src:
                    pt: PointData = src.point(
                        lon,
                        lat,
                        coord_crs=coord_crs,
                        indexes=[b.bidx for b in bands],
                        **extra,
                    )
            except _OUTSIDE:
                return None
            mask = numpy.ma.getmaskarray(pt.array)
            for i, band in enumerate(bands):
                out[band.name] = numpy.ma.MaskedArray(
                    _unscale(pt.array.data[i : i + 1], band, opts).reshape(1, 1),
                    mask=mask[i : i + 1].reshape(1, 1),
                )
        return out

    def skip(item: Item, reason: str) -> None:
        skipped[item.id] = reason

    for item, arrays in run_bounded(pool, read, items, window, timeout, skip):
        if arrays is None:
            continue
        i = position[item.id]
        q = item_quality(arrays, expression)
        if q is not None and not numpy.ma.getmaskarray(q)[0, 0] and numpy.isfinite(q.data[0, 0]):
            quality[i] = float(q.data[0, 0])
        if q is not None:
            method.decide(q, i)
        for name in physical:
            if name in arrays and not numpy.ma.getmaskarray(arrays[name])[0, 0]:
                values[i][name] = float(arrays[name].data[0, 0])
    win = None
    if method.winner is not None and method.winner[0, 0] != NO_WINNER:
        win = int(method.winner[0, 0])
    return PointSeries(winner=win, quality=quality, values=values, skipped=skipped)
