"""The ``Catalog`` interface: what the engine and the API need from a collection.

A catalogue answers, for one collection: its description (bands, renders, extent), the
items whose footprint meets a geometry and pass a request's filters **in collection
order** (``sortby``, then item id; default ``datetime``), and pages of that selection.
The in-memory catalogue (:mod:`tiler.catalog.memory`) is the first implementation;
PgSTAC and STAC API catalogues implement the same methods with the same semantics, so
the mosaic (and its tie rule) is the same whatever holds the items.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from shapely.geometry.base import BaseGeometry

from tiler.catalog.filters import Search
from tiler.catalog.models import CollectionInfo, Item


@dataclass(frozen=True)
class ItemPage:
    """A page of a selection: the items, and how many match in all (None: unknown)."""

    items: list[Item]
    matched: int | None
    offset: int


class Catalog(abc.ABC):
    """One served collection, wherever its items live."""

    #: the collection id (the ``{collection_id}`` of URLs)
    id: str

    @abc.abstractmethod
    def info(self) -> CollectionInfo:
        """The collection's description (bands, renders, extent, item count, summaries)."""

    @abc.abstractmethod
    def search(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None = None
    ) -> list[Item]:
        """Items whose footprint intersects ``geometry`` and that pass ``search``.

        Args:
            search: the request's filters and order.
            geometry: area in lon/lat (None: everywhere).
            limit: the most items a caller accepts (None: no limit).

        Returns:
            The items in collection order (position = tie-break order of the mosaic).

        Raises:
            TooManyItems: more than ``limit`` items match.
            InvalidFilter: the filter cannot be evaluated.
        """

    @abc.abstractmethod
    def page(self, search: Search, limit: int, offset: int) -> ItemPage:
        """A page of the items ``search`` selects (anywhere), in collection order."""

    @abc.abstractmethod
    def sample(self) -> Item | None:
        """One item typical of the collection (its resolution sets the zoom range)."""

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"}``, or ``"unavailable"`` with a ``detail`` (database, API)."""
        return {"status": "ok"}

    def close(self) -> None:  # noqa: B027 - catalogues without resources need nothing
        """Release what the catalogue holds (connections, caches)."""
