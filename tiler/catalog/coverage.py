"""Where a catalogue's tiles stay under the items limit: the lowest zoom worth asking for.

A quality mosaic reads every item under a tile, so a tile over more items than the limit
is refused (never a partial mosaic). The estimate probes the tiles over the collection's
centre: a tile holds the tiles below it, so the count only grows as the zoom goes down,
and a binary search over the zooms finds the lowest one under the limit.
"""

from __future__ import annotations

import threading

from cachetools import TTLCache
from morecantile import TileMatrixSet
from shapely.geometry import box

from tiler.catalog.base import Catalog
from tiler.catalog.filters import Search
from tiler.errors import TooManyItems


class MinZoom:
    """Lowest zooms under a limit, kept for ``ttl`` seconds per (catalogue, tms, search).

    Args:
        limit: the most items a tile may select.
        ttl: seconds an estimate is kept.
    """

    def __init__(self, limit: int, ttl: float = 300.0) -> None:
        self.limit = limit
        self._kept: TTLCache[tuple[str, str, Search], int] = TTLCache(maxsize=1024, ttl=ttl)
        self._lock = threading.Lock()

    def _under(self, catalog: Catalog, tms: TileMatrixSet, search: Search, z: int) -> bool:
        w, s, e, n = catalog.info().bounds
        lon, lat = (w + e) / 2, (s + n) / 2
        tile = tms.tile(lon, lat, z)
        try:
            catalog.search(search, box(*tms.bounds(tile)), limit=self.limit)
        except TooManyItems:
            return False
        return True

    def __call__(self, catalog: Catalog, tms: TileMatrixSet, search: Search, maxzoom: int) -> int:
        """The lowest zoom (up to ``maxzoom``) whose centre tile is under the limit."""
        key = (catalog.id, tms.id, search)
        with self._lock:
            kept: int | None = self._kept.get(key)
        if kept is not None:
            return kept
        lo, hi = tms.minzoom, maxzoom
        if not self._under(catalog, tms, search, hi):
            found = hi
        else:
            while lo < hi:  # invariant: hi is under the limit
                mid = (lo + hi) // 2
                if self._under(catalog, tms, search, mid):
                    hi = mid
                else:
                    lo = mid + 1
            found = hi
        with self._lock:
            self._kept[key] = found
        return found
