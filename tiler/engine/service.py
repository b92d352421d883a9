"""The engine a server holds: read pool, open datasets and limits, with a lifecycle.

``Engine`` ties a catalogue's selection to the mosaic: it asks the catalogue for the items
under a grid's footprint (never more than ``max_items``), then mosaics them. The app
creates one at start-up and closes it at shutdown (:func:`tiler.app.create_app`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rio_tiler.models import ImageData

from tiler.catalog.base import Catalog
from tiler.catalog.filters import Search
from tiler.catalog.models import Item
from tiler.engine.expression import Expression
from tiler.engine.grids import Grid, PointGrid
from tiler.engine.io import DatasetCache, ItemReader, ReadOptions
from tiler.engine.mosaic import MosaicStats, PointSeries, point_series, quality_mosaic
from tiler.engine.schedule import Scheduler


class Engine:
    """Quality mosaics over catalogues.

    Args:
        read_threads: reads in flight (the pool's size, and one request's window).
        item_timeout: seconds without progress after which an item's read is given up.
        max_items: a request selecting more items gets
            :class:`~tiler.catalog.base.TooManyItems`.
        open_datasets: open datasets kept per read thread.
    """

    def __init__(
        self,
        read_threads: int = 8,
        item_timeout: float = 30.0,
        max_items: int = 500,
        open_datasets: int = 32,
    ) -> None:
        self.max_items = max_items
        self.datasets = DatasetCache(open_datasets)
        self.reader = ItemReader(self.datasets)
        self.scheduler = Scheduler(read_threads, timeout=item_timeout)

    def close(self) -> None:
        """Stop the reads and close the open datasets."""
        self.scheduler.close()
        self.datasets.close()

    def mosaic(
        self,
        catalog: Catalog,
        search: Search,
        grid: Grid,
        quality: Expression,
        bands: Sequence[str],
        options: ReadOptions,
    ) -> tuple[ImageData, MosaicStats]:
        """The quality mosaic of the items ``search`` selects under ``grid``.

        Raises:
            TooManyItems: more than ``max_items`` items are selected.
        """
        t = time.perf_counter()
        items = catalog.search(search, grid.footprint(), limit=self.max_items)
        search_ms = (time.perf_counter() - t) * 1000
        image, stats = quality_mosaic(
            items, quality, bands, grid, options, self.reader, self.scheduler
        )
        stats.timings = {"search": search_ms, **stats.timings}
        image.assets = stats.used
        return image, stats

    def point(
        self,
        catalog: Catalog,
        search: Search,
        grid: PointGrid,
        quality: Expression,
        bands: Sequence[str],
        options: ReadOptions,
    ) -> tuple[list[Item], PointSeries]:
        """Every selected item's values at the point, and the winner.

        Raises:
            TooManyItems: more than ``max_items`` items are selected.
        """
        items = catalog.search(search, grid.footprint(), limit=self.max_items)
        series = point_series(items, quality, bands, grid, options, self.reader, self.scheduler)
        return items, series
