"""The collection backend: which items a request mosaics, in which order, and the reads.

A rio-tiler ``BaseBackend`` whose ``input`` is a :class:`~tiler.collection.Collection`.
``assets_for_*`` apply the request's :class:`~tiler.search.Search` to the items that the
spatial index finds; ``tile``/``part``/``point`` run the quality mosaic over them.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import attr
from morecantile import Tile, TileMatrixSet
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rio_tiler.constants import WEB_MERCATOR_TMS, WGS84_CRS
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from rio_tiler.mosaic.backend import BaseBackend
from rio_tiler.types import BBox
from shapely.geometry import Point, box

from tiler.collection import Collection, Item
from tiler.errors import TooLarge
from tiler.expression import Expression
from tiler.reader import (
    MosaicStats,
    PartGrid,
    PointSeries,
    ReadOptions,
    TileGrid,
    point_series,
    quality_mosaic,
)
from tiler.search import Search, select

logger = logging.getLogger(__name__)


@attr.s
class CollectionBackend(BaseBackend):
    """Quality-mosaic backend over one collection.

    Attributes:
        input: the collection.
        pool: executor for reads (default: a private pool of ``threads`` workers).
        threads: reads in flight per request.
        max_items: a request selecting more items gets :class:`~tiler.errors.TooLarge`.
        timeout: seconds without progress after which an item's read is given up.
    """

    input: Collection = attr.ib()
    tms: TileMatrixSet = attr.ib(default=WEB_MERCATOR_TMS)
    reader: type[Reader] = attr.ib(default=Reader)
    reader_options: dict = attr.ib(factory=dict)
    pool: Executor | None = attr.ib(default=None)
    threads: int = attr.ib(default=8)
    max_items: int = attr.ib(default=500)
    timeout: float = attr.ib(default=30.0)

    minzoom: int = attr.ib(default=0)
    maxzoom: int = attr.ib(default=24)

    def __attrs_post_init__(self) -> None:
        """Set bounds in lon/lat from the items' footprints."""
        self.bounds = self.input.bounds
        self.crs = WGS84_CRS
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=self.threads)

    # -- which items --------------------------------------------------------------------
    def _select(self, geom: Any, search: Search | None) -> list[Item]:
        items = select(self.input, search or Search(), geom)
        if len(items) > self.max_items:
            raise TooLarge(
                f"{len(items)} items match this request, more than the limit of "
                f"{self.max_items}: narrow it with datetime, bbox, ids or filter, or zoom in"
            )
        return items

    def assets_for_tile(  # type: ignore[override]
        self, x: int, y: int, z: int, search: Search | None = None, **kwargs: Any
    ) -> list[Item]:
        """Items overlapping tile x/y/z that pass ``search``, in collection order."""
        return self._select(box(*self.tms.bounds(Tile(x, y, z))), search)

    def assets_for_point(  # type: ignore[override]
        self,
        lng: float,
        lat: float,
        coord_crs: CRS | None = None,
        search: Search | None = None,
        **kwargs: Any,
    ) -> list[Item]:
        """Items whose footprint contains the point, in collection order."""
        if coord_crs is not None and coord_crs != WGS84_CRS:
            lng, lat, _, _ = transform_bounds(coord_crs, WGS84_CRS, lng, lat, lng, lat)
        return self._select(Point(lng, lat).buffer(1e-9), search)

    def assets_for_bbox(  # type: ignore[override]
        self,
        xmin: float,
        ymin: float,
        xmax: float,
        ymax: float,
        coord_crs: CRS | None = None,
        search: Search | None = None,
        **kwargs: Any,
    ) -> list[Item]:
        """Items overlapping the bbox, in collection order."""
        if coord_crs is not None and coord_crs != WGS84_CRS:
            xmin, ymin, xmax, ymax = transform_bounds(
                coord_crs, WGS84_CRS, xmin, ymin, xmax, ymax, densify_pts=21
            )
        return self._select(box(xmin, ymin, xmax, ymax), search)

    def asset_name(self, asset: Any) -> str:
        """An item's id."""
        return str(asset.id)

    # -- reads ---------------------------------------------------------------------------
    def _mosaic(
        self,
        items: list[Item],
        grid: Any,
        quality: Expression,
        bands: list[str],
        options: ReadOptions | None,
        search_ms: float,
    ) -> tuple[ImageData, MosaicStats]:
        assert self.pool is not None
        img, stats = quality_mosaic(
            items,
            quality,
            bands,
            grid,
            options or ReadOptions(),
            self.pool,
            window=self.threads,
            timeout=self.timeout,
            reader_options=self.reader_options,
        )
        stats.timings = {"search": search_ms, **stats.timings}
        img.assets = stats.used
        return img, stats

    def tile(  # type: ignore[override]
        self,
        x: int,
        y: int,
        z: int,
        *,
        quality: Expression,
        bands: list[str],
        search: Search | None = None,
        tilesize: int = 256,
        options: ReadOptions | None = None,
        **kwargs: Any,
    ) -> tuple[ImageData, MosaicStats]:
        """Quality mosaic of tile x/y/z with bands ``bands``."""
        t = time.perf_counter()
        items = self.assets_for_tile(x, y, z, search=search)
        search_ms = (time.perf_counter() - t) * 1000
        grid = TileGrid(self.tms, x, y, z, tilesize)
        return self._mosaic(items, grid, quality, bands, options, search_ms)

    def part(  # type: ignore[override]
        self,
        bbox: BBox,
        *,
        quality: Expression,
        bands: list[str],
        width: int,
        height: int,
        bounds_crs: CRS = WGS84_CRS,
        dst_crs: CRS | None = None,
        search: Search | None = None,
        options: ReadOptions | None = None,
        **kwargs: Any,
    ) -> tuple[ImageData, MosaicStats]:
        """Quality mosaic of ``bbox`` (in ``bounds_crs``) on width x height in dst_crs."""
        t = time.perf_counter()
        items = self.assets_for_bbox(*bbox, coord_crs=bounds_crs, search=search)
        search_ms = (time.perf_counter() - t) * 1000
        geographic = bbox
        if bounds_crs != WGS84_CRS:
            geographic = transform_bounds(bounds_crs, WGS84_CRS, *bbox, densify_pts=21)
        grid = PartGrid(
            bbox=tuple(bbox),  # type: ignore[arg-type]
            bounds_crs=bounds_crs,
            dst_crs=dst_crs or bounds_crs,
            width=width,
            height=height,
            geographic=tuple(geographic),  # type: ignore[arg-type]
        )
        return self._mosaic(items, grid, quality, bands, options, search_ms)

    def point(  # type: ignore[override]
        self,
        lon: float,
        lat: float,
        *,
        quality: Expression,
        bands: list[str],
        coord_crs: CRS = WGS84_CRS,
        search: Search | None = None,
        options: ReadOptions | None = None,
        **kwargs: Any,
    ) -> tuple[list[Item], PointSeries]:
        """Every selected item's values at the point, and the winner."""
        items = self.assets_for_point(lon, lat, coord_crs=coord_crs, search=search)
        assert self.pool is not None
        series = point_series(
            items,
            quality,
            bands,
            lon,
            lat,
            coord_crs,
            options or ReadOptions(),
            self.pool,
            window=self.threads,
            timeout=self.timeout,
        )
        return items, series
