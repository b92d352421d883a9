"""Reading items: one item's bands onto a grid, through the open datasets.

:class:`ItemReader` reads an item's bands onto any :class:`~tiler.engine.grids.Grid`
(tiles, parts and points alike), grouped so that each file is read once, through a
:class:`~tiler.engine.datasets.DatasetCache` (open datasets kept across requests, signed
where their host needs it); :class:`~tiler.engine.datasets.StallGuard` stops new reads of
a file that does not answer; :class:`~tiler.engine.jobs.FailedFiles` refuses reads of a
remote file for a few seconds after one failed, then makes GDAL forget it.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy
import rio_tiler.utils
from affine import Affine
from morecantile import TileMatrixSet
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import calculate_default_transform
from rio_tiler.errors import PointOutsideBounds, RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader

from tiler.catalog.assets import is_remote
from tiler.catalog.models import Band, Item
from tiler.engine.credentials import AccessRefused, Signed, denied, host_of
from tiler.engine.datasets import DatasetCache, FileNotAnswering, StallGuard
from tiler.engine.extents import ExtentCache
from tiler.engine.grids import Grid
from tiler.engine.jobs import FailedFiles, reset_gdal_error
from tiler.engine.scrubbing import scrubbed
from tiler.engine.sparse import SparseReads
from tiler.engine.warped_index import LevelOpener
from tiler.errors import InvalidNodata

__all__ = [
    "GDAL_DEFAULTS",
    "DatasetCache",
    "FileNotAnswering",
    "ItemReader",
    "ReadOptions",
    "StallGuard",
    "default_transform",
    "native_maxzoom",
    "nodata_fits",
    "nodata_refused",
    "remember_default_transforms",
]

logger = logging.getLogger(__name__)

_OUTSIDE = (TileOutsideBounds, PointOutsideBounds)

#: GDAL settings for reading COGs, applied by the server's entry point
#: (:func:`tiler.app.serve_app`) unless the environment already has them.
GDAL_DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    # a remote read that hangs holds a thread: let curl give up (seconds)
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_TIMEOUT": "30",
    # memory bounds (see the README's memory notes): the block cache in MB (200 and 64 are
    # equally fast on the demo), remote chunks cached by curl, and per open dataset
    # (TILER_OPEN_DATASETS of them) a read cache
    "GDAL_CACHEMAX": "64",
    "CPL_VSIL_CURL_CACHE_SIZE": "200000000",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "1000000",
}


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


def _groups(
    item: Item, names: Sequence[str], opts: ReadOptions
) -> dict[tuple[Any, ...], list[Band]]:
    """Bands to read grouped by (href, nodata, file unscale) so each group is one read."""
    groups: dict[tuple[Any, ...], list[Band]] = defaultdict(list)
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


def nodata_fits(value: float, dtype: str) -> bool:
    """Whether a nodata value can be held by ``dtype`` (NaN only by floats).

    Raises:
        TypeError: numpy does not know ``dtype``.
    """
    kind = numpy.dtype(dtype)
    if kind.kind in "iu":
        info = numpy.iinfo(kind)
        return math.isfinite(value) and info.min <= value <= info.max
    if kind.kind == "f":
        return math.isnan(value) or abs(value) <= float(numpy.finfo(kind).max)
    return True


def nodata_refused(value: float, name: str, dtype: str) -> InvalidNodata:
    """The 400 of a nodata override that band ``name`` of type ``dtype`` cannot hold."""
    kind = numpy.dtype(dtype)
    if kind.kind in "iu":
        info = numpy.iinfo(kind)
        allowed = f"a whole number in {info.min}..{info.max}"
    else:
        allowed = "a finite number or nan"
    return InvalidNodata(
        f"nodata={value:g} cannot be held by band {name!r} ({dtype}): use {allowed}, or "
        "leave nodata out to use the files' own"
    )


def check_nodata_fits(value: float, bands: Sequence[Band], dtypes: Sequence[str]) -> None:
    """Refuse a nodata override that a band of a file (data types ``dtypes``) cannot hold.

    Raises:
        InvalidNodata: e.g. nan or 300 for an 8-bit band.
    """
    for band in bands:
        dtype = str(dtypes[band.bidx - 1])
        if not nodata_fits(value, dtype):
            raise nodata_refused(value, band.name, dtype)


class ItemReader:
    """Reads items' bands onto grids through a :class:`DatasetCache`.

    Attributes:
        datasets: the open datasets.
        options: extra options for ``rio_tiler.io.Reader``.
        guard: refuses reads of files that do not answer.
        extents: the raster extents of the files read (learned from their headers).
        failed: remote files whose read failed lately (refused, then retried).
        sparse: the warped indexes of reads done as gathers (:mod:`tiler.engine.sparse`).
    """

    def __init__(
        self,
        datasets: DatasetCache,
        options: dict[str, Any] | None = None,
        guard: StallGuard | None = None,
        extents: ExtentCache | None = None,
        failed: FailedFiles | None = None,
        sparse: SparseReads | None = None,
    ) -> None:
        self.datasets = datasets
        self.sparse = sparse if sparse is not None else SparseReads()
        self.options = dict(options or {})
        self.guard = guard or StallGuard(math.inf)
        self.extents = extents if extents is not None else ExtentCache()
        self.failed = failed if failed is not None else FailedFiles()

    def read(
        self, item: Item, names: Sequence[str], grid: Grid, opts: ReadOptions
    ) -> dict[str, numpy.ma.MaskedArray] | None:
        """Read bands ``names`` of ``item`` onto ``grid``.

        Args:
            item: the item.
            names: band names; names the item lacks are left out of the result.
            grid: the output grid.
            opts: read options.

        Returns:
            2-D masked arrays by band name, or None if the item's rasters miss the grid.

        Raises:
            FileFailed: a remote file's read failed, now or a moment ago
                (:class:`~tiler.engine.jobs.FailedFiles`).
            RasterioError, RioTilerError, OSError, CPLE_BaseError: another fault of a
                file.
        """
        out: dict[str, numpy.ma.MaskedArray] = {}
        tms = grid.tms
        for (href, nodata, file_unscale), bands in _groups(item, names, opts).items():
            options = dict(self.options)
            if tms is not None:
                options["tms"] = tms
            extra = opts.kwargs()
            if nodata is not None:
                extra["nodata"] = nodata
            if file_unscale:
                extra["unscale"] = True
            remote = is_remote(href)
            if remote:
                self.failed.check(href)
            try:
                array = self._read_file(href, grid, bands, options, extra)
            except _OUTSIDE:
                return None
            except FileNotAnswering:  # refused, not read: nothing new about the file
                raise
            except (RasterioError, OSError, CPLE_BaseError) as exc:
                if not remote:  # GDAL does not remember local faults: the next read retries
                    raise
                raise self.failed.fail(href, exc) from exc
            mask = numpy.ma.getmaskarray(array)
            for i, band in enumerate(bands):
                out[band.name] = numpy.ma.MaskedArray(
                    _unscale(array.data[i], band, opts), mask=mask[i]
                )
        return out

    def _read_file(
        self,
        href: str,
        grid: Grid,
        bands: list[Band],
        options: dict[str, Any],
        extra: dict[str, Any],
    ) -> numpy.ma.MaskedArray:
        """Read ``bands`` of the file ``href`` onto ``grid``, signed if it needs it.

        A signed read that fails is tried again once on a new handle, signed anew (a
        refusal in the middle of a read, e.g. its token expired, only says that the read
        failed), and once with a renewed token if it was refused (401/403). Faults of
        signed reads are raised without the token (and without the GDAL errors they came
        from, which name the signed URL).

        Raises:
            InvalidNodata: the nodata override cannot be held by a band's data type.
            AccessRefused: a signed read was refused again with a renewed token, or no
                token could be had.
            RasterioError, RioTilerError, OSError, CPLE_BaseError: another fault.
        """
        credentials = self.datasets.credentials
        fresh = renewed = False
        while True:
            signed = credentials.sign(href)
            reset_gdal_error()  # not an earlier failed read's, in this pool thread
            try:
                with (
                    self.guard.reading(href),
                    self.datasets.checkout(signed, fresh) as (ds, _),
                    Reader(href, dataset=ds, **options) as src,
                ):
                    if href not in self.extents:  # once per file, not per read
                        self.extents.learn(href, ds.crs, ds.transform, ds.width, ds.height)
                    if "nodata" in extra:  # one the file's data type cannot hold: a 400
                        check_nodata_fits(extra["nodata"], bands, ds.dtypes)
                    indexes = [b.bidx for b in bands]
                    with self.sparse.bound(self._levels(signed)):
                        array: numpy.ma.MaskedArray = grid.read(src, indexes, **extra)
                    return array
            except (*_OUTSIDE, FileNotAnswering):
                raise
            except (RasterioError, OSError, CPLE_BaseError) as exc:
                if signed.token is None:
                    raise
                refused = denied(exc)
                if refused and not renewed:
                    credentials.renew(signed)
                    renewed = fresh = True
                    continue
                if not refused and not fresh:  # e.g. its token expired during the read
                    credentials.forget(signed)  # a new handle asks the server again
                    fresh = True
                    continue
                if refused:
                    why = "HTTP 401/403 with a renewed token"
                    raise AccessRefused(host_of(href), why) from None
                raise scrubbed(exc, credentials) from None

    def _levels(self, signed: Signed) -> LevelOpener:
        """Opens overview levels of ``signed``'s file through :attr:`datasets` (kept open)."""

        @contextmanager
        def level(k: int) -> Iterator[Any]:
            with self.datasets.checkout(signed, level=k) as (ds, _):
                yield ds

        return level


@functools.lru_cache(maxsize=4096)
def _default_transform(
    src_crs: CRS, dst_crs: CRS, width: int, height: int, *bounds: float
) -> tuple[Affine, int, int]:
    result: tuple[Affine, int, int] = calculate_default_transform(
        src_crs, dst_crs, width, height, *bounds
    )
    return result


def default_transform(
    src_crs: Any, dst_crs: Any, width: int, height: int, *args: Any, **kw: Any
) -> Any:
    """``rasterio.warp.calculate_default_transform``, remembered per arguments.

    rio-tiler calls it for every read that reprojects (``get_vrt_transform``), always with
    the same arguments for a file and a tile matrix set; rasterio 1.4 leaks the transformer
    options of each call (``imgProjOptions``, about 0.8 KB with the target CRS's WKT, freed
    with ``CPLFree`` instead of ``CSLDestroy``), which was the server's steady growth per
    request. Calls with other arguments (GCPs, resolution, dimensions) are passed through.
    """
    if kw or len(args) != 4 or not (isinstance(src_crs, CRS) and isinstance(dst_crs, CRS)):
        return calculate_default_transform(src_crs, dst_crs, width, height, *args, **kw)
    return _default_transform(src_crs, dst_crs, width, height, *args)


def remember_default_transforms() -> None:
    """Make rio-tiler use :func:`default_transform` (idempotent; a server process's setup)."""
    setattr(rio_tiler.utils, "calculate_default_transform", default_transform)  # noqa: B010


def native_maxzoom(href: str, tms: TileMatrixSet, url: str | None = None) -> int | None:
    """The zoom of ``tms`` that matches the native resolution of ``href``.

    Args:
        href: the file (what a failure logs).
        tms: the tile matrix set.
        url: what to open instead (``href`` signed: never logged).

    Returns:
        The zoom, or None when the file cannot be read (logged).
    """
    try:
        with Reader(url or href, tms=tms) as src:
            return int(src.maxzoom)
    except (RasterioError, RioTilerError, OSError) as exc:
        why = exc if url is None else type(exc).__name__  # a signed URL's error names it
        logger.warning("cannot read %s to find its native zoom: %s", href, why)
        return None
