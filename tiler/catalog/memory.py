"""The in-memory catalogue: a collection's items held in the process, with a spatial index.

Selection is vectorised over the collection (an STRtree of the footprints, a datetime
array, per-filter match results and per-key sort ranks kept per catalogue), so a lookup
stays fast when thousands of items match.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from tiler.catalog.base import Catalog, ItemPage
from tiler.catalog.filters import Search, compile_filter, matches, referenced
from tiler.catalog.models import (
    CollectionInfo,
    Item,
    band_aliases,
    declared_data_types,
    summarise,
)
from tiler.catalog.ordering import dense, ranks_of
from tiler.errors import TooManyItems

MAX_CACHED_FILTERS = 64
"""Filters whose per-item results a catalogue keeps (least recently used dropped)."""

MAX_CACHED_RANKS = 32
"""Sort keys whose per-item ranks a catalogue keeps (least recently used dropped).

Only keys that name a property of some item (or ``datetime``, ``id``) are ranked and kept:
a key that no item has shares one all-missing array, so client-chosen names cost nothing.
"""

_LAST = numpy.iinfo("int64").max


class MemoryCatalog(Catalog):
    """A collection held in memory: items in default order (datetime, then id).

    Attributes:
        id: the collection id.
        items: the items in default order.
        bands: band names of the items, in first-seen order.
        source: the file the collection was loaded from, if any.
    """

    def __init__(
        self,
        id: str,
        items: list[Item],
        title: str | None = None,
        description: str | None = None,
        renders: dict[str, dict[str, Any]] | None = None,
        source: Path | None = None,
    ) -> None:
        self.id = id
        self.items = sorted(items, key=lambda it: (it.datetime, it.id))
        self.title = title
        self.description = description
        self.renders = dict(renders or {})
        self.source = source
        names: dict[str, None] = {}
        for item in self.items:
            names.update(dict.fromkeys(item.bands))
        self.bands = list(names)
        geoms = numpy.empty(len(self.items), dtype=object)
        geoms[:] = [it.geometry for it in self.items]
        self._geoms = geoms
        self._tree = STRtree(geoms)
        self._times = numpy.array([it.datetime.timestamp() for it in self.items], dtype="f8")
        self._positions = {it.id: i for i, it in enumerate(self.items)}
        self._bounds = _union_bounds(geoms)
        self._lock = threading.Lock()
        self._filters: OrderedDict[str, numpy.ndarray] = OrderedDict()
        self._ranks: OrderedDict[str, numpy.ndarray] = OrderedDict()
        self._property_names: frozenset[str] | None = None
        self._no_ranks: numpy.ndarray | None = None
        self._info: CollectionInfo | None = None

    # -- description -----------------------------------------------------------------
    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Union of the item footprints' bounds, in lon/lat."""
        return self._bounds

    @property
    def interval(self) -> tuple[str | None, str | None]:
        """First and last item datetime."""
        if not self.items:
            return (None, None)
        return (self.items[0].isodatetime, self.items[-1].isodatetime)

    def info(self) -> CollectionInfo:
        """The collection's description (summaries and common names computed once)."""
        if self._info is None:
            pairs: set[tuple[str, str | None]] = set()
            for item in self.items:
                pairs.update([(b.name, b.common_name) for b in item.bands.values()])
            self._info = CollectionInfo(
                id=self.id,
                title=self.title,
                description=self.description,
                bounds=self.bounds,
                interval=self.interval,
                bands=list(self.bands),
                renders=self.renders,
                item_count=len(self.items),
                summaries=summarise(self.items),
                aliases=band_aliases(pairs, self.bands),
                data_types=declared_data_types(
                    (b for item in self.items for b in item.bands.values()), self.bands
                ),
            )
        return self._info

    def sample(self) -> Item | None:
        """The first item in default order."""
        return self.items[0] if self.items else None

    # -- selection -------------------------------------------------------------------
    def search(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None = None
    ) -> list[Item]:
        """Items intersecting ``geometry`` that pass ``search``, in collection order."""
        positions = self.select_positions(search, geometry)
        if limit is not None and positions.size > limit:
            raise TooManyItems(int(positions.size), limit)
        items = self.items
        return [items[i] for i in positions.tolist()]

    def page(self, search: Search, limit: int, offset: int) -> ItemPage:
        """A page of the items ``search`` selects, in collection order."""
        positions = self.select_positions(search, None)
        items = self.items
        chosen = positions[offset : offset + limit].tolist()
        return ItemPage([items[i] for i in chosen], int(positions.size), offset)

    def select_positions(self, search: Search, geom: BaseGeometry | None) -> numpy.ndarray:
        """Positions (in default order) of the selected items, in collection order."""
        area = search.area
        if area is not None:
            geom = area if geom is None else geom.intersection(area)
            if geom.is_empty:
                return numpy.empty(0, dtype="int64")
        # bounding boxes first, then the cheap filters, then the exact footprints
        if geom is None:
            pos = numpy.arange(len(self.items), dtype="int64")
        else:
            pos = numpy.asarray(self._tree.query(geom), dtype="int64")
        if pos.size and (search.start is not None or search.end is not None):
            times = self._times[pos]
            keep = numpy.ones(pos.size, dtype=bool)
            if search.start is not None:
                keep &= times >= search.start.timestamp()
            if search.end is not None:
                keep &= times <= search.end.timestamp()
            pos = pos[keep]
        if pos.size and search.ids is not None:
            known = self._positions
            wanted = numpy.fromiter(
                (known[i] for i in search.ids if i in known), dtype="int64", count=-1
            )
            pos = pos[numpy.isin(pos, wanted)]
        if pos.size and geom is not None:
            shapely.prepare(geom)
            pos = pos[numpy.asarray(shapely.intersects(self._geoms[pos], geom), dtype=bool)]
        if pos.size and search.filter is not None:
            pos = self.filter_positions(search.filter, pos)
        if not search.sortby:
            pos.sort()  # default order: the collection's own (datetime, then id)
            return pos
        keys = [self.sort_ranks("id")[pos]]
        for k in reversed(search.sortby):
            r = self.sort_ranks(k.field)[pos]
            keys.append(numpy.where(r < 0, _LAST, -r if k.descending else r))
        return pos[numpy.lexsort(keys)]

    # -- per-catalogue caches --------------------------------------------------------
    def sort_ranks(self, name: str) -> numpy.ndarray:
        """Ranks of every item's value of sort key ``name`` (-1: missing), read-only.

        Ranks of at most :data:`MAX_CACHED_RANKS` keys are kept (least recently used
        dropped). A key that no item has as a property gets one shared all-missing array,
        never a cache entry of its own.
        """
        with self._lock:
            ranks = self._ranks.get(name)
            if ranks is not None:
                self._ranks.move_to_end(name)
                return ranks
        if name not in ("datetime", "id") and name not in self.property_names():
            return self._missing_ranks()
        if name == "datetime":  # one float per distinct microsecond, in order
            ranks = dense(self._times) if self.items else numpy.empty(0, dtype="int64")
        elif name == "id":
            ranks = ranks_of([it.id for it in self.items])
        else:
            ranks = ranks_of([it.properties.get(name) for it in self.items])
        ranks.flags.writeable = False
        with self._lock:  # two threads may compute it; both get the same array
            ranks = self._ranks.setdefault(name, ranks)
            self._ranks.move_to_end(name)
            while len(self._ranks) > MAX_CACHED_RANKS:
                self._ranks.popitem(last=False)
        return ranks

    def property_names(self) -> frozenset[str]:
        """Every property name that some item of the collection has (computed once)."""
        names = self._property_names
        if names is None:
            found: set[str] = set()
            for item in self.items:
                found.update(item.properties)
            names = self._property_names = frozenset(found)
        return names

    def _missing_ranks(self) -> numpy.ndarray:
        """The ranks of a key that no item has: -1 everywhere, one shared array."""
        ranks = self._no_ranks
        if ranks is None:
            ranks = numpy.full(len(self.items), -1, dtype="int64")
            ranks.flags.writeable = False
            self._no_ranks = ranks
        return ranks

    def _filter_states(self, text: str) -> numpy.ndarray:
        with self._lock:
            states = self._filters.get(text)
            if states is None:
                states = numpy.full(len(self.items), -1, dtype="int8")
                self._filters[text] = states
                while len(self._filters) > MAX_CACHED_FILTERS:
                    self._filters.popitem(last=False)
            else:
                self._filters.move_to_end(text)
        return states

    def filter_positions(self, text: str, positions: numpy.ndarray) -> numpy.ndarray:
        """The positions whose items pass the CQL2 filter ``text``, in the order given.

        Each item is matched once per filter text with ``cql2``; the result is kept in an
        int8 array over the collection (-1 not yet known, 0 no, 1 yes), so a request only
        matches the items no earlier request with that filter has seen. An item whose
        match fails (:class:`~tiler.errors.InvalidFilter`) stays unknown.
        """
        expr = compile_filter(text)
        states = self._filter_states(text)
        known = states[positions]
        todo = positions[known < 0]
        if todo.size:
            names = referenced(text)
            for i in todo.tolist():
                item = self.items[i]
                props = item.properties
                if names is not None:  # only what the filter reads: ~1/3 faster
                    props = {n: props[n] for n in names if n in props}
                read = {**props, "datetime": item.isodatetime}
                states[i] = 1 if matches(expr, item.id, read) else 0
            known = states[positions]
        passed: numpy.ndarray = positions[known == 1]
        return passed


def exact_selection(
    collection_id: str, items: list[Item], search: Search, geometry: BaseGeometry | None
) -> list[Item]:
    """The items that ``search`` selects under ``geometry``, in collection order.

    Catalogues that fetch a superset from elsewhere (a database, an API) finish with this,
    so their selection and order are exactly the in-memory catalogue's.
    """
    catalog = MemoryCatalog(collection_id, items)
    chosen = catalog.items
    return [chosen[i] for i in catalog.select_positions(search, geometry).tolist()]


def _union_bounds(geoms: numpy.ndarray) -> tuple[float, float, float, float]:
    if not len(geoms):
        return (-180.0, -90.0, 180.0, 90.0)
    b = shapely.bounds(geoms)
    return (
        float(numpy.nanmin(b[:, 0])),
        float(numpy.nanmin(b[:, 1])),
        float(numpy.nanmax(b[:, 2])),
        float(numpy.nanmax(b[:, 3])),
    )
