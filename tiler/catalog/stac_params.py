"""A request's :class:`~tiler.catalog.filters.Search` as STAC API item-search parameters.

The one translation of a search for catalogues that push it down (PgSTAC's
``stac_search_to_where``, a STAC API's ``/search``): the body of a ``POST /search``, with
the spatial filter as ``intersects`` (else ``bbox``), the datetime as an RFC 3339 interval
in UTC ending in ``Z``, the ids, the CQL2 filter as CQL2-JSON and a total ``sortby`` (the
request's keys, then the item id; default ``datetime``). What a catalogue cannot apply at
the source it leaves out and applies itself (:func:`tiler.catalog.memory.exact_selection`).
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from tiler.catalog.filters import Search, SortKey, compile_filter
from tiler.catalog.models import rfc3339


def sortby_keys(sortby: tuple[SortKey, ...]) -> list[dict[str, str]]:
    """STAC ``sortby`` of collection order: the keys (default ``datetime``), then ``id``.

    The id last makes the order total, so pages neither repeat nor skip items.
    """
    keys = sortby or (SortKey("datetime"),)
    return [
        *({"field": k.field, "direction": "desc" if k.descending else "asc"} for k in keys),
        {"field": "id", "direction": "asc"},
    ]


def stac_search_body(
    collection_id: str, search: Search, geometry: BaseGeometry | None = None
) -> dict[str, Any]:
    """The STAC API item-search body of ``search`` over one collection.

    Args:
        collection_id: the collection searched.
        search: the request's filters and order.
        geometry: the area searched in lon/lat, already clipped to ``search.bbox`` (sent as
            ``intersects``); None: ``search.bbox`` (sent as ``bbox``), if any.

    Returns:
        ``collections``, ``intersects`` or ``bbox``, ``datetime``, ``ids`` (sorted),
        ``filter`` with ``filter-lang`` ``cql2-json``, and ``sortby``; each only where the
        search has it, but ``collections`` and ``sortby`` always.

    Raises:
        InvalidFilter: the filter is not valid CQL2 text.
    """
    body: dict[str, Any] = {"collections": [collection_id]}
    if geometry is not None:
        body["intersects"] = mapping(geometry)
    elif search.bbox is not None and search.bbox[0] > search.bbox[2]:
        body["intersects"] = mapping(search.area)  # across the antimeridian: two boxes
    elif search.bbox is not None:
        body["bbox"] = list(search.bbox)
    if search.start is not None or search.end is not None:
        lo = ".." if search.start is None else rfc3339(search.start)
        hi = ".." if search.end is None else rfc3339(search.end)
        body["datetime"] = f"{lo}/{hi}"
    if search.ids is not None:
        body["ids"] = sorted(search.ids)
    if search.filter is not None:
        body["filter"] = compile_filter(search.filter).to_json()
        body["filter-lang"] = "cql2-json"
    body["sortby"] = sortby_keys(search.sortby)
    return body
