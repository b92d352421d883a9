"""The base of catalogues whose items live elsewhere (a PgSTAC database, a STAC API).

One search template for all of them: the request's bbox clips the searched area, a
search already answered comes from the per-process :class:`SearchCache`, otherwise the
subclass fetches the candidate items from its source (:meth:`RemoteCatalog._candidates`,
the filters pushed down where the source can apply them), and the in-memory catalogue's
own code (:func:`~tiler.catalog.memory.exact_selection`) selects and orders them. So
the items, their collection order and so the mosaic's tie rule are exactly those of a
collection file, whatever the source could or could not apply.

The description is one template too: the collection document's fields
(:func:`~tiler.catalog.collection_doc.collection_info`), its declared band names, else
those the subclass reads from its items.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shapely.geometry.base import BaseGeometry

from tiler.catalog.base import Catalog
from tiler.catalog.cache import SearchCache
from tiler.catalog.collection_doc import collection_info, declared_bands
from tiler.catalog.filters import Search
from tiler.catalog.items import build_items, parse_item
from tiler.catalog.memory import exact_selection
from tiler.catalog.models import CollectionInfo, Item
from tiler.errors import TooManyItems

logger = logging.getLogger(__name__)

#: the folder relative hrefs would be under: items of a database or an API carry URLs or
#: absolute paths
_ROOT = Path("/")


class RemoteCatalog(Catalog):
    """One collection whose items are fetched per search, then selected exactly here.

    Subclasses supply how candidate items are fetched (:meth:`_candidates`), the
    collection document (:meth:`_document`), the item count (:meth:`_count`) and, for a
    document that does not declare them, the band names (:meth:`_bands`).

    Args:
        collection_id: the collection id.
        cache_ttl: seconds a search's selection is kept (0: not kept).
        cache_size: items kept in the search cache, over all its searches (0: none).
    """

    def __init__(self, collection_id: str, cache_ttl: float, cache_size: int) -> None:
        self.id = collection_id
        self._cache = SearchCache(cache_ttl, cache_size)
        self._layouts: dict[str, list[str]] = {}
        self._info: CollectionInfo | None = None

    # -- what a subclass supplies ----------------------------------------------------
    @abc.abstractmethod
    def _candidates(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None
    ) -> list[Item]:
        """The items the source selects for ``search`` under ``geometry``, in any order.

        A superset of the selection is fine (what the source cannot filter is filtered
        here); a subset is not.

        Args:
            search: the request's filters and order.
            geometry: the area in lon/lat, already clipped to ``search.bbox`` (None:
                everywhere).
            limit: the most items the caller accepts (None: no limit).

        Raises:
            TooManyItems: the source has more than ``limit`` candidates.
        """

    @abc.abstractmethod
    def _document(self) -> dict[str, Any]:
        """The collection's STAC Collection document."""

    @abc.abstractmethod
    def _count(self) -> int | None:
        """How many items the collection has (None: the source cannot tell)."""

    @abc.abstractmethod
    def _bands(self, doc: dict[str, Any]) -> list[str]:
        """The band names, for a document that does not declare them in order."""

    # -- the templates ---------------------------------------------------------------
    def info(self) -> CollectionInfo:
        """From the collection document; the band names it declares, else :meth:`_bands`."""
        if self._info is None:
            doc = self._document()
            bands = declared_bands(doc)
            if bands is None:
                bands = self._bands(doc)
            self._info = collection_info(doc, self.id, bands, self._count())
        return self._info

    def search(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None = None
    ) -> list[Item]:
        """Items under ``geometry`` passing ``search``, in collection order (all of them)."""
        area = search.area
        if area is not None:
            geometry = area if geometry is None else geometry.intersection(area)
            if geometry.is_empty:
                return []
        key = (None if geometry is None else geometry.wkb, search, limit)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        candidates = self._candidates(search, geometry, limit)
        # the exact selection and collection order, by the in-memory catalogue's own code
        chosen = exact_selection(self.id, candidates, search, geometry)
        if limit is not None and len(chosen) > limit:
            raise TooManyItems(len(chosen), limit)
        self._cache.put(key, chosen)
        return chosen

    def _parse(self, docs: Iterable[Any]) -> list[Item]:
        """Items from the source's STAC item documents (hrefs: URLs or absolute paths).

        Raises:
            CollectionLoadError: a document is not a STAC item the server can read.
        """
        return build_items([parse_item(d, _ROOT, self._layouts, None) for d in docs])
