"""A per-process cache of searches for catalogues that live elsewhere (databases, APIs).

The key is the search's geometry (as WKB), its filters and the limit; the value is the
selected items in collection order. Entries live ``ttl`` seconds, so items added to the
catalogue show up in tiles at most that late.
"""

from __future__ import annotations

import threading
from typing import Any

from cachetools import TTLCache

from tiler.catalog.models import Item


class SearchCache:
    """Selected items by search, for ``ttl`` seconds, at most ``size`` items in all (0: off).

    Bounded by items, not searches: a parsed item costs kilobytes (benchmarks/README.md,
    "Figures behind the catalogue's design"), and a search of a busy tile holds hundreds of them.
    """

    def __init__(self, ttl: float, size: int) -> None:
        self.size = size
        self._kept: TTLCache[Any, list[Item]] | None = (
            TTLCache(maxsize=size, ttl=ttl, getsizeof=lambda items: max(1, len(items)))
            if ttl > 0 and size > 0
            else None
        )
        self._lock = threading.Lock()

    def get(self, key: Any) -> list[Item] | None:
        """A copy of the kept items, or None."""
        if self._kept is None:
            return None
        with self._lock:
            hit = self._kept.get(key)
        return None if hit is None else list(hit)

    def put(self, key: Any, items: list[Item]) -> None:
        """Keep the items of a search (not when they alone exceed the bound)."""
        if self._kept is not None and len(items) <= self.size:
            with self._lock:
                self._kept[key] = list(items)
