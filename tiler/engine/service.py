"""The engine a server holds: read pool, open datasets and limits, with a lifecycle.

``Engine`` ties a catalogue's selection to the mosaic: it asks the catalogue for the items
under a grid's footprint (never more than ``max_items``), then mosaics them. The app
creates one at start-up and closes it at shutdown (:func:`tiler.app.create_app`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from rio_tiler.models import ImageData

from tiler.catalog.assets import is_remote
from tiler.catalog.base import Catalog
from tiler.catalog.filters import Search
from tiler.catalog.models import Item
from tiler.engine.budget import Budget, current_budget
from tiler.engine.credentials import Credentials, credentials_from, host_of
from tiler.engine.datasets import DatasetCache, StallGuard
from tiler.engine.expression import Expression
from tiler.engine.grids import Grid, PointGrid
from tiler.engine.io import ItemReader, ReadOptions
from tiler.engine.jobs import RETRY_AFTER, FailedFiles, forget_remote
from tiler.engine.mosaic import MosaicStats, quality_mosaic
from tiler.engine.point import PointSeries, point_series
from tiler.engine.schedule import Scheduler
from tiler.engine.scrubbing import hide_secrets
from tiler.engine.sparse import SparseReads
from tiler.errors import AccessDenied
from tiler.settings import Settings

#: a file whose read has run this many item timeouts is not answering (exports' reads of
#: large grids may legitimately run longer than one timeout)
STALL_FACTOR = 4


class Engine:
    """Quality mosaics over catalogues.

    Args:
        read_threads: reads of local files running at once (and one request's window);
            reads waiting on a slow file leave their place to others
            (:mod:`tiler.engine.schedule`).
        io_threads: reads of remote files running at once.
        item_timeout: seconds a request's reads may wait on their files, all together
            (from the first that waits), before their items are skipped (scaled up for
            grids larger than 1024 x 1024); new reads of a file whose read has run
            :data:`STALL_FACTOR` times longer are skipped at once.
        max_items: a request selecting more items gets
            :class:`~tiler.catalog.base.TooManyItems`.
        open_datasets: open datasets kept (all threads together).
        retry_after: seconds a remote file whose read failed is not asked again (its items
            are skipped, saying when it is retried); then it is read afresh.
        credentials: how files are opened (Azure SAS tokens, S3 options per bucket); its S3
            options are set in GDAL while the engine is open, and its tokens are kept out
            of rasterio's and the engine's log records.
    """

    def __init__(
        self,
        read_threads: int = 8,
        item_timeout: float = 5.0,
        max_items: int = 500,
        open_datasets: int = 64,
        io_threads: int = 32,
        retry_after: float = RETRY_AFTER,
        credentials: Credentials | None = None,
    ) -> None:
        self.max_items = max_items
        self.credentials = credentials if credentials is not None else Credentials()
        self.credentials.apply()
        self._unhide = hide_secrets(self.credentials)
        self.datasets = DatasetCache(open_datasets, self.credentials)
        locate = self.credentials.locate
        self.sparse = SparseReads()
        self.reader = ItemReader(
            self.datasets,
            guard=StallGuard(STALL_FACTOR * item_timeout),
            failed=FailedFiles(retry_after, forget=lambda href: forget_remote(locate(href))),
            sparse=self.sparse,
        )
        self.scheduler = Scheduler(read_threads, timeout=item_timeout, io_threads=io_threads)

    @classmethod
    def from_settings(cls, settings: Settings, max_items: int | None = None) -> Engine:
        """The engine ``settings`` describe.

        Args:
            settings: the server's or export's settings.
            max_items: items a grid may read (default: the per-tile limit; exports have none).
        """
        return cls(
            read_threads=settings.read_threads,
            io_threads=settings.io_threads,
            item_timeout=settings.item_timeout,
            max_items=settings.max_items_per_tile if max_items is None else max_items,
            open_datasets=settings.open_datasets,
            credentials=credentials_from(settings),
        )

    def close(self) -> None:
        """Stop the reads and close the open datasets."""
        self.scheduler.close()
        self.datasets.close()
        self.credentials.close()
        self._unhide()

    def mosaic(
        self,
        catalog: Catalog,
        search: Search,
        grid: Grid,
        quality: Expression,
        bands: Sequence[str],
        options: ReadOptions,
        budget: Budget | None = None,
    ) -> tuple[ImageData, MosaicStats]:
        """The quality mosaic of the items ``search`` selects under ``grid``.

        Raises:
            TooManyItems: more than ``max_items`` items are selected.
            DeadlineExceeded, RequestCancelled: ``budget`` (default: the current
                request's) ran out or was cancelled.
        """
        budget = budget or current_budget()
        t = time.perf_counter()
        items = catalog.search(search, grid.footprint(), limit=self.max_items)
        search_ms = (time.perf_counter() - t) * 1000
        budget.check()  # a client gone during the search: no read is started
        image, stats = quality_mosaic(
            items, quality, bands, grid, options, self.reader, self.scheduler, budget
        )
        budget.check()  # nor rendered and encoded once the reads are done
        stats.timings = {"search": search_ms, **stats.timings}
        if stats.read == 0:
            refused_everywhere(items, stats.skipped)
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
        budget: Budget | None = None,
    ) -> tuple[list[Item], PointSeries]:
        """Every selected item's values at the point, and the winner.

        Raises:
            TooManyItems: more than ``max_items`` items are selected.
            DeadlineExceeded, RequestCancelled: as :meth:`mosaic`.
        """
        items = catalog.search(search, grid.footprint(), limit=self.max_items)
        series = point_series(
            items, quality, bands, grid, options, self.reader, self.scheduler, budget
        )
        if len(series.skipped) == len(items):
            refused_everywhere(items, series.skipped)
        return items, series


def refused_everywhere(items: Iterable[Item], skipped: dict[str, str]) -> None:
    """Raise :class:`~tiler.errors.AccessDenied` if every item was refused access.

    Called when no item could be read: if each item skipped was refused (401/403 or no
    token), the answer is a 502 naming the hosts, not an empty tile.

    Raises:
        AccessDenied: every skipped item was refused, and there was one at least.
    """
    if not skipped or not all("access denied" in reason for reason in skipped.values()):
        return
    hosts = sorted(
        {
            host_of(band.href)
            for item in items
            if item.id in skipped
            for band in item.bands.values()
            if is_remote(band.href)
        }
    )
    if hosts:
        raise AccessDenied(hosts)
