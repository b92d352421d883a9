"""Reading items: open datasets kept across requests, one item's bands onto a grid.

:class:`DatasetCache` keeps a small LRU of open rasterio datasets per read thread (a
dataset is never shared between threads), so a file's header and GDAL's block cache
survive between requests; :meth:`DatasetCache.close` closes them all. :class:`ItemReader`
reads an item's bands onto any :class:`~tiler.engine.grids.Grid` (tiles, parts and points
alike), grouped so that each file is read once.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy
import rasterio
from morecantile import TileMatrixSet
from rasterio.errors import RasterioError
from rio_tiler.errors import PointOutsideBounds, RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader

from tiler.catalog.models import Band, Item
from tiler.engine.grids import Grid

logger = logging.getLogger(__name__)

_OUTSIDE = (TileOutsideBounds, PointOutsideBounds)

#: GDAL settings for reading COGs, applied by the server's entry point
#: (:func:`tiler.app.serve_app`) unless the environment already has them.
GDAL_DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    "GDAL_CACHEMAX": "200",
    "CPL_VSIL_CURL_CACHE_SIZE": "200000000",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "5000000",
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


class DatasetCache:
    """Open datasets, an LRU of ``size`` per thread, closed together by :meth:`close`."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[OrderedDict[str, rasterio.io.DatasetReader]] = []

    def _lru(self) -> OrderedDict[str, rasterio.io.DatasetReader]:
        lru: OrderedDict[str, rasterio.io.DatasetReader] | None = getattr(self._local, "lru", None)
        if lru is None:
            lru = self._local.lru = OrderedDict()
            with self._lock:
                self._all.append(lru)
        return lru

    def get(self, href: str) -> rasterio.io.DatasetReader:
        """This thread's open dataset of ``href`` (opened on first use)."""
        lru = self._lru()
        ds = lru.pop(href, None)
        if ds is None or ds.closed:
            ds = rasterio.open(href)
        lru[href] = ds
        while len(lru) > self.size:
            _, old = lru.popitem(last=False)
            old.close()
        return ds

    def reader(self, href: str, **options: Any) -> Reader:
        """A rio-tiler Reader over this thread's open dataset of ``href``."""
        return Reader(href, dataset=self.get(href), **options)

    def close(self) -> None:
        """Close every open dataset of every thread (call once reads have stopped)."""
        with self._lock:
            lrus, self._all = self._all, []
        for lru in lrus:
            while lru:
                _, ds = lru.popitem()
                ds.close()


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


class ItemReader:
    """Reads items' bands onto grids through a :class:`DatasetCache`.

    Attributes:
        datasets: the open datasets.
        options: extra options for ``rio_tiler.io.Reader``.
    """

    def __init__(self, datasets: DatasetCache, options: dict[str, Any] | None = None) -> None:
        self.datasets = datasets
        self.options = dict(options or {})

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
            try:
                with self.datasets.reader(href, **options) as src:
                    array = grid.read(src, [b.bidx for b in bands], **extra)
            except _OUTSIDE:
                return None
            mask = numpy.ma.getmaskarray(array)
            for i, band in enumerate(bands):
                out[band.name] = numpy.ma.MaskedArray(
                    _unscale(array.data[i], band, opts), mask=mask[i]
                )
        return out


def native_maxzoom(href: str, tms: TileMatrixSet) -> int | None:
    """The zoom of ``tms`` that matches the native resolution of ``href``.

    Returns:
        The zoom, or None when the file cannot be read (logged).
    """
    try:
        with Reader(href, tms=tms) as src:
            return int(src.maxzoom)
    except (RasterioError, RioTilerError, OSError) as exc:
        logger.warning("cannot read %s to find its native zoom: %s", href, exc)
        return None
