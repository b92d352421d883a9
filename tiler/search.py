"""Per-request item selection: STAC API filters (datetime, bbox, ids, CQL2) and sortby.

``Search`` is parsed from query strings once per request; :func:`select` applies it to the
items a spatial query found and returns them in collection order.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cql2
import numpy
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
    """Whether one item passes a CQL2 filter (the reference, one item at a time)."""
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


def _compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as :class:`_Key` orders two values of one key (not None)."""
    if a == b:
        return 0
    try:
        return -1 if a < b else 1
    except TypeError:
        a, b = str(a), str(b)
        if a == b:
            return 0
        return -1 if a < b else 1


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
    """Collection order: the sortby keys, then item id ascending (default: datetime).

    The reference implementation, one comparison at a time; :func:`select` sorts with
    per-collection ranks instead (the same order, except that a key mixing kinds of
    values, which pairwise comparison leaves without a consistent order, sorts numbers,
    then text, then the rest: see :func:`_ranks_of`).
    """
    keys = sortby or (SortKey("datetime"),)
    fields = tuple(k.field for k in keys) + ("id",)
    desc = tuple(k.descending for k in keys) + (False,)
    return sorted(items, key=lambda it: _Key(tuple(_value(it, f) for f in fields), desc))


# ---------------------------------------------------------------------------------------
# per-collection caches: filter results and sort ranks

_LOCK = threading.Lock()
MAX_CACHED_FILTERS = 64
"""Filters whose per-item results a collection keeps (least recently used dropped)."""


_NUMBERS = {int, float, bool}
_EXACT_INT = 2**53


def _dense(values: numpy.ndarray) -> numpy.ndarray:
    """Dense ranks of a numeric or string array (numpy's order is Python's for these)."""
    return numpy.unique(values, return_inverse=True)[1].astype("int64").reshape(-1)


def _numbers_rank(vals: list[Any]) -> numpy.ndarray:
    if all(type(v) is not int for v in vals) or (
        min(vals) >= -_EXACT_INT and max(vals) <= _EXACT_INT
    ):
        return _dense(numpy.array(vals, dtype="float64"))
    return _python_rank(vals)  # integers beyond float64's exact range


def _python_rank(vals: list[Any]) -> numpy.ndarray:
    """Dense ranks in Python's order (hashable, mutually comparable values)."""
    where = {v: r for r, v in enumerate(sorted(set(vals)))}
    return numpy.array([where[v] for v in vals], dtype="int64")


def _compare_rank(vals: list[Any]) -> numpy.ndarray:
    """Dense ranks by :func:`_compare` (values compared as text where they cannot be)."""

    def by_value(i: int, j: int) -> int:
        return _compare(vals[i], vals[j])

    perm = sorted(range(len(vals)), key=functools.cmp_to_key(by_value))
    rank = 0
    out = numpy.empty(len(vals), dtype="int64")
    for k, i in enumerate(perm):
        if k and by_value(perm[k - 1], i) != 0:
            rank += 1
        out[i] = rank
    return out


def _other_rank(vals: list[Any]) -> numpy.ndarray:
    if len(set(map(type, vals))) == 1:
        try:
            return _python_rank(vals)
        except TypeError:  # unhashable (lists) or unordered
            pass
    return _compare_rank(vals)


def _ranks_of(values: list[Any]) -> numpy.ndarray:
    """Dense ranks (0, 1, ...; equal values share one) of values, -1 for None.

    Values of one kind sort as Python sorts them (numbers by value, text by code
    point, lists element by element). Where a key mixes kinds, numbers come first, then
    text, then anything else (compared as text where Python cannot compare): a total
    order, where comparing mixed values one pair at a time gives none.
    """
    ranks = numpy.full(len(values), -1, dtype="int64")
    present = numpy.fromiter(
        map(operator.is_not, values, itertools.repeat(None)), dtype=bool, count=len(values)
    )
    if not present.any():
        return ranks
    vals = [v for v in values if v is not None]
    kinds = set(map(type, vals))
    if kinds <= _NUMBERS:
        ranks[present] = _numbers_rank(vals)
        return ranks
    if kinds == {str} and "\x00" not in "".join(vals):  # numpy drops trailing NULs
        ranks[present] = _dense(numpy.array(vals, dtype=str))
        return ranks
    groups: tuple[list[int], list[int], list[int]] = ([], [], [])
    for k, v in enumerate(vals):
        groups[0 if type(v) in _NUMBERS else 1 if type(v) is str else 2].append(k)
    out = numpy.empty(len(vals), dtype="int64")
    offset = 0
    for g, members in enumerate(groups):
        if not members:
            continue
        part = [vals[k] for k in members]
        if g == 0:
            r = _numbers_rank(part)
        elif g == 1:
            r = _python_rank(part)
        else:
            r = _other_rank(part)
        out[members] = r + offset
        offset += int(r.max()) + 1
    ranks[present] = out
    return ranks


def sort_ranks(collection: Collection, name: str) -> numpy.ndarray:
    """Ranks of every item's value of sort key ``name`` (-1: missing), cached."""
    key = ("ranks", name)
    ranks = collection.cache.get(key)
    if ranks is None:
        items = collection.items
        if name == "datetime":  # one float per distinct microsecond, in order
            ranks = _dense(collection.times) if items else numpy.empty(0, dtype="int64")
        elif name == "id":
            ranks = _ranks_of([it.id for it in items])
        else:
            ranks = _ranks_of([it.properties.get(name) for it in items])
        collection.cache[key] = ranks
    return ranks  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _referenced(text: str) -> frozenset[str] | None:
    """Property names a CQL2 filter reads (None: names that are paths, read them all)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("property"), str):
                names.add(node["property"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(compile_filter(text).to_json())
    if any("." in n or "/" in n for n in names):
        return None
    return frozenset(names)


def _filter_states(collection: Collection, text: str) -> numpy.ndarray:
    with _LOCK:
        filters = collection.cache.get("filters")
        if filters is None:
            filters = collection.cache["filters"] = OrderedDict()
        states = filters.get(text)
        if states is None:
            states = numpy.full(len(collection.items), -1, dtype="int8")
            filters[text] = states
            while len(filters) > MAX_CACHED_FILTERS:
                filters.popitem(last=False)
        else:
            filters.move_to_end(text)
    return states  # type: ignore[no-any-return]


def filter_positions(collection: Collection, text: str, positions: numpy.ndarray) -> numpy.ndarray:
    """The positions whose items pass the CQL2 filter ``text``.

    Each item is matched once per (collection, filter text) with ``cql2``; the result is
    kept in an int8 array over the collection (-1 not yet known, 0 no, 1 yes), so a
    request only matches the items no earlier request with that filter has seen.

    Args:
        collection: the collection.
        text: CQL2 text (valid: see :func:`compile_filter`).
        positions: item positions (int64 array).

    Returns:
        The positions that pass, in the order given.
    """
    expr = compile_filter(text)
    states = _filter_states(collection, text)
    known = states[positions]
    todo = positions[known < 0]
    if todo.size:
        items = collection.items
        names = _referenced(text)
        for i in todo.tolist():
            item = items[i]
            if names is None:
                ok = _matches(expr, item)
            else:  # the same document with only what the filter reads: ~1/3 faster
                props = item.properties
                read = {n: props[n] for n in names if n in props}
                read["datetime"] = item.isodatetime
                try:
                    ok = bool(expr.matches({"id": item.id, "properties": read}))
                except Exception:  # a property the item lacks: no match
                    ok = False
            states[i] = 1 if ok else 0
        known = states[positions]
    return positions[known == 1]


_LAST = numpy.iinfo("int64").max


def select_positions(
    collection: Collection, search: Search, geom: BaseGeometry | None
) -> numpy.ndarray:
    """Positions of the items :func:`select` returns, in collection order."""
    if search.bbox is not None:
        area = box(*search.bbox)
        geom = area if geom is None else geom.intersection(area)
        if geom.is_empty:
            return numpy.empty(0, dtype="int64")
    # bounding boxes first, then the cheap filters, then the exact footprints
    pos = collection.query(geom, exact=False)
    if pos.size and (search.start is not None or search.end is not None):
        times = collection.times[pos]
        keep = numpy.ones(pos.size, dtype=bool)
        if search.start is not None:
            keep &= times >= search.start.timestamp()
        if search.end is not None:
            keep &= times <= search.end.timestamp()
        pos = pos[keep]
    if pos.size and search.ids is not None:
        known = collection.positions
        wanted = numpy.fromiter(
            (known[i] for i in search.ids if i in known), dtype="int64", count=-1
        )
        pos = pos[numpy.isin(pos, wanted)]
    if pos.size and geom is not None:
        pos = pos[collection.intersects(pos, geom)]
    if pos.size and search.filter is not None:
        pos = filter_positions(collection, search.filter, pos)
    if not search.sortby:
        pos.sort()  # default order: the collection's own (datetime, then id)
        return pos
    keys = [sort_ranks(collection, "id")[pos]]
    for k in reversed(search.sortby):
        r = sort_ranks(collection, k.field)[pos]
        keys.append(numpy.where(r < 0, _LAST, -r if k.descending else r))
    return pos[numpy.lexsort(keys)]


def select(collection: Collection, search: Search, geom: BaseGeometry | None) -> list[Item]:
    """Items of ``collection`` that intersect ``geom`` and pass ``search``, in order.

    Vectorised over the collection (spatial index, datetime array, cached filter results
    and sort ranks), so a lookup stays fast when thousands of items match.

    Args:
        collection: the collection.
        search: parsed filters and sortby.
        geom: area of interest in lon/lat (None: everywhere).

    Returns:
        The selected items in collection order.
    """
    items = collection.items
    return [items[i] for i in select_positions(collection, search, geom).tolist()]
