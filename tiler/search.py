"""Per-request item selection: STAC API filters (datetime, bbox, ids, CQL2) and sortby.

``Search`` is parsed from query strings once per request; :func:`select` applies it to the
items a spatial query found and returns them in collection order.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cql2
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from tiler.collection import Collection, Item
from tiler.errors import InvalidFilter

_SORT_KEY = re.compile(r"^[+-]?[A-Za-z_][\w:.\-]*$")


@dataclass(frozen=True)
class SortKey:
    """One sortby key: a property name (``datetime``, ``id`` or any property)."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class Search:
    """The request's filters and order, parsed and validated."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    ids: frozenset[str] | None = None
    filter: str | None = None
    sortby: tuple[SortKey, ...] = ()

    @property
    def is_default(self) -> bool:
        """True when the search selects everything in default order."""
        return self == Search()


def _parse_instant(text: str, *, end: bool) -> dt.datetime:
    text = text.strip()
    try:
        if len(text) == 10:  # a date: the whole day
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
            return moment.replace(tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidFilter(
            f"datetime {text!r} is not RFC 3339: use e.g. 2020-07-01T00:00:00Z, a date "
            "2020-07-01, or an interval 2020-07-01/2020-09-01 with '..' for an open end"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_datetime(value: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Parse a STAC ``datetime`` parameter into an inclusive (start, end) interval.

    Args:
        value: an instant, a date, or ``start/end`` with ``..`` or empty for an open end.

    Returns:
        (start, end), either may be None for an open end.

    Raises:
        InvalidFilter: malformed, or start after end.
    """
    if value is None or value.strip() == "":
        return None, None
    parts = value.split("/")
    if len(parts) == 1:
        if parts[0].strip() == "..":
            raise InvalidFilter("datetime '..' alone is not an interval; use '../..' or omit")
        start = _parse_instant(parts[0], end=False)
        end = _parse_instant(parts[0], end=True) if len(parts[0].strip()) == 10 else start
        return start, end
    if len(parts) != 2:
        raise InvalidFilter(
            f"datetime {value!r} has {len(parts) - 1} '/': an interval is start/end"
        )
    s, e = (p.strip() for p in parts)
    lo = None if s in ("", "..") else _parse_instant(s, end=False)
    hi = None if e in ("", "..") else _parse_instant(e, end=True)
    if lo and hi and lo > hi:
        raise InvalidFilter(f"datetime {value!r}: start is after end")
    return lo, hi


def parse_bbox(
    value: str | Sequence[float] | None,
) -> tuple[float, float, float, float] | None:
    """Parse ``minx,miny,maxx,maxy`` in lon/lat."""
    if value is None or value == "":
        return None
    try:
        nums = [float(v) for v in value.split(",")] if isinstance(value, str) else list(value)
    except ValueError:
        raise InvalidFilter(f"bbox {value!r}: expected 4 numbers minx,miny,maxx,maxy") from None
    if len(nums) != 4:
        raise InvalidFilter(f"bbox {value!r}: expected 4 numbers minx,miny,maxx,maxy")
    minx, miny, maxx, maxy = nums
    if not all(v == v and abs(v) != float("inf") for v in nums):
        raise InvalidFilter(f"bbox {value!r}: numbers must be finite")
    if minx > maxx or miny > maxy:
        raise InvalidFilter(f"bbox {value!r}: min must not exceed max")
    if miny < -90 or maxy > 90 or minx < -180 or maxx > 180:
        raise InvalidFilter(f"bbox {value!r}: lon must be in [-180, 180], lat in [-90, 90]")
    return (minx, miny, maxx, maxy)


@functools.lru_cache(maxsize=256)
def compile_filter(text: str) -> cql2.Expr:
    """Parse CQL2 text once (cached)."""
    try:
        expr = cql2.Expr(text)
        expr.validate()
    except Exception as exc:
        raise InvalidFilter(
            f"filter {text!r} is not valid CQL2 text: {str(exc).strip()}. "
            "Example: eo:cloud_cover < 20 AND platform = 'sentinel-2a'"
        ) from None
    return expr


def parse_sortby(value: str | None) -> tuple[SortKey, ...]:
    """Parse STAC ``sortby``: comma-separated keys, ``-`` for descending."""
    if not value:
        return ()
    keys = []
    for raw in value.split(","):
        raw = raw.strip()
        if not _SORT_KEY.match(raw):
            raise InvalidFilter(
                f"sortby key {raw!r} is not valid: use property names with an optional "
                "'+' or '-' prefix, e.g. -eo:cloud_cover,datetime"
            )
        keys.append(SortKey(field=raw.lstrip("+-"), descending=raw.startswith("-")))
    return tuple(keys)


def make_search(
    datetime: str | None = None,
    bbox: str | None = None,
    ids: str | Sequence[str] | None = None,
    filter: str | None = None,
    sortby: str | None = None,
) -> Search:
    """Parse the request's filter parameters into a :class:`Search`."""
    start, end = parse_datetime(datetime)
    id_set: frozenset[str] | None = None
    if ids:
        parts = ids.split(",") if isinstance(ids, str) else list(ids)
        id_set = frozenset(p.strip() for p in parts if p.strip())
    if filter is not None and filter.strip():
        compile_filter(filter.strip())
    return Search(
        start=start,
        end=end,
        bbox=parse_bbox(bbox),
        ids=id_set,
        filter=filter.strip() if filter and filter.strip() else None,
        sortby=parse_sortby(sortby),
    )


def _matches(expr: cql2.Expr, item: Item) -> bool:
    doc = {
        "id": item.id,
        "properties": {**item.properties, "datetime": item.isodatetime},
    }
    try:
        return bool(expr.matches(doc))
    except Exception:  # a property the item lacks: the filter does not match it
        return False


def _value(item: Item, name: str) -> Any:
    if name == "datetime":
        return item.datetime
    if name == "id":
        return item.id
    return item.properties.get(name)


class _Key:
    """Sort key for one item: sortby values (None last), then id."""

    __slots__ = ("values", "desc")

    def __init__(self, values: tuple[Any, ...], desc: tuple[bool, ...]) -> None:
        self.values = values
        self.desc = desc

    def __lt__(self, other: _Key) -> bool:
        for a, b, d in zip(self.values, other.values, self.desc, strict=True):
            if a == b:
                continue
            if a is None:
                return False
            if b is None:
                return True
            try:
                return bool(a > b) if d else bool(a < b)
            except TypeError:
                a, b = str(a), str(b)
                if a == b:
                    continue
                return a > b if d else a < b
        return False


def order(items: list[Item], sortby: tuple[SortKey, ...]) -> list[Item]:
    """Collection order: the sortby keys, then item id ascending (default: datetime)."""
    keys = sortby or (SortKey("datetime"),)
    fields = tuple(k.field for k in keys) + ("id",)
    desc = tuple(k.descending for k in keys) + (False,)
    return sorted(items, key=lambda it: _Key(tuple(_value(it, f) for f in fields), desc))


def select(collection: Collection, search: Search, geom: BaseGeometry | None) -> list[Item]:
    """Items of ``collection`` that intersect ``geom`` and pass ``search``, in order.

    Args:
        collection: the collection.
        search: parsed filters and sortby.
        geom: area of interest in lon/lat (None: everywhere).

    Returns:
        The selected items in collection order.
    """
    if search.bbox is not None:
        area = box(*search.bbox)
        geom = area if geom is None else geom.intersection(area)
        if geom.is_empty:
            return []
    positions = collection.intersecting(geom) if geom is not None else range(len(collection.items))
    start = search.start.timestamp() if search.start else None
    end = search.end.timestamp() if search.end else None
    expr = compile_filter(search.filter) if search.filter else None
    out = []
    for i in positions:
        t = collection.times[i]
        if (start is not None and t < start) or (end is not None and t > end):
            continue
        item = collection.items[i]
        if search.ids is not None and item.id not in search.ids:
            continue
        if expr is not None and not _matches(expr, item):
            continue
        out.append(item)
    if search.sortby:
        return order(out, search.sortby)
    return out
