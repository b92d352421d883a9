"""The request's filters, parsed once: datetime, bbox, ids, CQL2 filter and sortby.

Every catalogue receives the same :class:`Search`; this module is the one parser of each
parameter (and of RFC 3339 instants, which item loaders use too), and the reference of
how one item matches a CQL2 filter.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cql2
import pystac.utils
from shapely.geometry import MultiPolygon, box
from shapely.geometry.base import BaseGeometry

from tiler.catalog.cql2_tree import check_tree
from tiler.errors import BadRequest, InvalidFilter, quoted

logger = logging.getLogger(__name__)

_SORT_KEY = re.compile(r"[+-]?[A-Za-z_][\w:.\-]*")
#: RFC 3339's date-time (or a full date); the offset may be left out (then UTC)
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d(?:[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)?)?", re.ASCII
)

#: bounds on CQL2 filter text, checked before the parser sees it (cql2's parser recurses
#: per nesting level and crashes the process at ~2,000 parentheses); the parsed tree is then
#: checked by one linear walk (cql2_tree), never by cql2's exponential schema validation
MAX_FILTER_LENGTH = 4096
#: parentheses inside parentheses, and operators inside operators once parsed
MAX_FILTER_DEPTH = 8
MAX_FILTER_NOTS = 8
#: AND, OR, NOT, comparisons and arithmetic
MAX_FILTER_OPERATORS = 128
#: sortby keys
MAX_SORT_KEYS = 8
FILTER_LIMITS = (
    f"filters are limited to {MAX_FILTER_LENGTH} characters, {MAX_FILTER_DEPTH} levels of "
    f"nesting (parentheses, or operators inside operators), {MAX_FILTER_NOTS} NOTs and "
    f"{MAX_FILTER_OPERATORS} operators (AND, OR, NOT, comparisons, arithmetic)"
)
#: string literals and quoted names (their content is not syntax), words, operators
_CQL2_TOKEN = re.compile(
    r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?"
    r"|(?P<word>[A-Za-z_][\w:.\-]*)|(?P<num>\d[\d.]*(?:[eE][+-]?\d+)?\w*)"
    r"|(?P<op><>|<=|>=|!=|[<>=+*/%^-])|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<comma>,)"
)
_NUMBER = re.compile(r"\s*\.?\d")
_CQL2_WORD_OPS = frozenset({"AND", "OR", "NOT", "DIV", "LIKE", "BETWEEN", "IN", "IS"})
_EXAMPLE = "Example: eo:cloud_cover < 20 AND platform = 'sentinel-2a'"
#: what ``cql2`` says when an item lacks a property the filter reads (or it has another
#: type): the item does not match
_CQL2_NO_VALUE = "Could not reduce expression to boolean"


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
    def area(self) -> BaseGeometry | None:
        """The bbox as an area in lon/lat: two boxes when it crosses the antimeridian."""
        return None if self.bbox is None else bbox_area(self.bbox)


def bbox_area(bbox: tuple[float, float, float, float]) -> BaseGeometry:
    """A lon/lat bbox as an area; ``minx > maxx`` crosses the antimeridian (two boxes)."""
    minx, miny, maxx, maxy = bbox
    if minx <= maxx:
        return box(minx, miny, maxx, maxy)
    return MultiPolygon([box(minx, miny, 180.0, maxy), box(-180.0, miny, maxx, maxy)])


# ---------------------------------------------------------------------------------------
# bbox

Bounds = tuple[float, float, float, float]


def bbox_numbers(
    value: str | Sequence[float], name: str = "bbox", error: type[BadRequest] = InvalidFilter
) -> Bounds:
    """``minx,miny,maxx,maxy``: four finite numbers, in text or a sequence, in any CRS.

    The one parser of the four numbers of a bbox: the STAC ``bbox`` (:func:`parse_bbox`),
    the HTTP exports' extent (:func:`tiler.api.params.parse_extent`) and, as this layer is
    below all of them, any command-line option may use it.

    Args:
        value: the text (or four numbers).
        name: the parameter's name, for the message.
        error: the exception to raise.

    Raises:
        InvalidFilter: (or ``error``) not 4 finite numbers.
    """
    expected = (
        f"{name} {quoted(value)}: expected 4 numbers minx,miny,maxx,maxy (4 finite numbers "
        "separated by commas)"
    )
    try:
        parts = value.split(",") if isinstance(value, str) else value
        nums = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        raise error(expected) from None
    if len(nums) != 4:
        raise error(expected)
    if not all(math.isfinite(v) for v in nums):
        raise error(f"{name} {quoted(value)}: numbers must be finite")
    return nums[0], nums[1], nums[2], nums[3]


def parse_bbox(value: str | Sequence[float] | None, name: str = "bbox") -> Bounds | None:
    """The STAC ``bbox``: ``minx,miny,maxx,maxy`` in lon/lat (:func:`bbox_numbers`).

    Values lie in [-180, 180] x [-90, 90] and miny <= maxy; minx > maxx crosses the
    antimeridian, as in the STAC API.

    Args:
        value: the text (or four numbers); None or empty: no bbox.
        name: the parameter's name, for the message.

    Raises:
        InvalidFilter: not 4 finite numbers, or out of the allowed ranges.
    """
    if value is None or (isinstance(value, str) and value == ""):
        return None
    minx, miny, maxx, maxy = bbox_numbers(value, name)
    if miny > maxy:  # minx > maxx crosses the antimeridian (STAC API)
        raise InvalidFilter(f"{name} {quoted(value)}: miny must not exceed maxy")
    if miny < -90 or maxy > 90 or minx < -180 or maxx > 180:
        raise InvalidFilter(f"{name} {quoted(value)}: lon must be in [-180, 180], lat in [-90, 90]")
    return (minx, miny, maxx, maxy)


# ---------------------------------------------------------------------------------------
# datetime


def parse_rfc3339(text: str) -> dt.datetime:
    """An RFC 3339 date-time (or a full date), in UTC; naive values are taken as UTC.

    Only RFC 3339's layout is taken (ISO 8601's week dates, ordinal dates and basic format
    such as ``2020-W27-3`` or ``20200701`` are not).

    Raises:
        ValueError: not a date-time, or outside the representable range once in UTC.
    """
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"{quoted(text, 40)} is not an RFC 3339 date-time")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        if len(text) < 10:  # at least a full date: never guess from "2020"
            raise
        # what Python's parser does not take (lower-case t/z, ...)
        moment = pystac.utils.str_to_datetime(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+23:59
        raise ValueError(f"{text!r} is outside the years 1..9999 in UTC") from exc


def _parse_instant(text: str, *, end: bool) -> dt.datetime:
    text = text.strip()
    try:
        if len(text) == 10 and _RFC3339.fullmatch(text):  # a date: the whole day
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
            return moment.replace(tzinfo=dt.UTC)
        return parse_rfc3339(text)
    except (ValueError, OverflowError):
        raise InvalidFilter(
            f"datetime {quoted(text)} is not RFC 3339: use e.g. 2020-07-01T00:00:00Z, a date "
            "2020-07-01, or an interval 2020-07-01/2020-09-01 with '..' for an open end"
        ) from None


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
            f"datetime {quoted(value)} has {len(parts) - 1} '/': an interval is start/end"
        )
    s, e = (p.strip() for p in parts)
    lo = None if s in ("", "..") else _parse_instant(s, end=False)
    hi = None if e in ("", "..") else _parse_instant(e, end=True)
    if lo and hi and lo > hi:
        raise InvalidFilter(f"datetime {quoted(value)}: start is after end")
    return lo, hi


# ---------------------------------------------------------------------------------------
# ids, sortby


def parse_ids(value: str | Sequence[str] | None) -> frozenset[str] | None:
    """Comma-separated item ids (a filter, never an order); None or empty: no filter."""
    if not value:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    return frozenset(p.strip() for p in parts if p.strip())


def parse_sortby(value: str | None) -> tuple[SortKey, ...]:
    """Parse STAC ``sortby``: comma-separated keys, ``-`` for descending."""
    if not value:
        return ()
    if value.count(",") >= MAX_SORT_KEYS:  # each key costs a comparison per item pair
        raise InvalidFilter(
            f"sortby has {value.count(',') + 1} keys: at most {MAX_SORT_KEYS}, e.g. "
            "-eo:cloud_cover,datetime"
        )
    keys = []
    for raw in value.split(","):
        raw = raw.strip()
        if not _SORT_KEY.fullmatch(raw):
            raise InvalidFilter(
                f"sortby key {quoted(raw)} is not valid: use property names with an optional "
                "'+' or '-' prefix, e.g. -eo:cloud_cover,datetime"
            )
        keys.append(SortKey(field=raw.lstrip("+-"), descending=raw.startswith("-")))
    return tuple(keys)


# ---------------------------------------------------------------------------------------
# CQL2


def _too_complex(text: str, what: str) -> InvalidFilter:
    return InvalidFilter(f"filter {quoted(text)} is too complex: {what}; {FILTER_LIMITS}")


def _negative_number(m: re.Match[str], text: str, previous: str) -> bool:
    """A '-' that is the sign of a number (as in ``IN (-1, -2)``), not an operator."""
    return (
        m["op"] == "-"
        and previous not in ("word", "num", "close", "quoted")
        and _NUMBER.match(text, m.end()) is not None
    )


def guard_filter_text(text: str) -> None:
    """Bound CQL2 text before any parser sees it: length, nesting, NOTs, operators.

    Raises:
        InvalidFilter: over one of the limits (the message names them all).
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise _too_complex(text, f"it has {len(text)} characters")
    depth = nots = ops = 0
    previous = ""
    for m in _CQL2_TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "open":
            depth += 1
            if depth > MAX_FILTER_DEPTH:
                raise _too_complex(
                    text, f"parentheses are nested more than {MAX_FILTER_DEPTH} deep"
                )
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "word" and m["word"].upper() in _CQL2_WORD_OPS:
            ops += 1
            nots += m["word"].upper() == "NOT"
        elif kind == "op" and not _negative_number(m, text, previous):
            ops += 1
        previous = kind or "quoted"
        if nots > MAX_FILTER_NOTS:
            raise _too_complex(text, f"it has more than {MAX_FILTER_NOTS} NOTs")
        if ops > MAX_FILTER_OPERATORS:
            raise _too_complex(text, f"it has more than {MAX_FILTER_OPERATORS} operators")


def _tree_depth(node: Any) -> int:
    """How deeply operators nest in CQL2-JSON (iterative: the tree may be deep)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if "op" in value:
                depth += 1
                deepest = max(deepest, depth)
            stack.extend((v, depth) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth) for v in value)
    return deepest


@functools.lru_cache(maxsize=256)
def compile_filter(text: str) -> cql2.Expr:
    """Check the text's size, parse it, check its nesting and its parts; once (cached).

    The parts are checked by one linear walk (:func:`~tiler.catalog.cql2_tree.check_tree`),
    never by ``cql2``'s JSON-schema validation, whose cost is exponential in the text.

    Raises:
        InvalidFilter: over the limits of :func:`guard_filter_text`, or not valid CQL2 text.
    """
    guard_filter_text(text)
    try:
        expr = cql2.Expr(text)
    # cql2 raises a bare Exception for syntax errors; the text is the user's, so every
    # failure here is a 400 that quotes the parser
    except Exception as exc:
        raise _not_cql2(text, str(exc)) from None
    tree = expr.to_json()
    depth = _tree_depth(tree)
    if depth > MAX_FILTER_DEPTH:
        raise _too_complex(text, f"operators are nested {depth} deep")
    try:
        check_tree(tree, parse_rfc3339)
    except InvalidFilter as exc:
        raise _not_cql2(text, str(exc)) from None
    return expr


def _not_cql2(text: str, why: str) -> InvalidFilter:
    return InvalidFilter(
        f"filter {quoted(text)} is not valid CQL2 text: {why.strip()[:500]}. {_EXAMPLE}"
    )


@functools.lru_cache(maxsize=256)
def referenced(text: str) -> frozenset[str] | None:
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


def matches(expr: cql2.Expr, item_id: str, properties: dict[str, Any]) -> bool:
    """Whether an item passes a CQL2 filter.

    Args:
        expr: the compiled filter.
        item_id: the item's id.
        properties: its properties, ``datetime`` as RFC 3339 text.

    Raises:
        InvalidFilter: the filter cannot be evaluated (other than a missing property,
            which is no match).
    """
    try:
        return bool(expr.matches({"id": item_id, "properties": properties}))
    # cql2 raises a bare Exception; only "no value" (a property the item lacks, or of
    # another type) means no match, anything else is the filter's fault
    except Exception as exc:
        if _CQL2_NO_VALUE in str(exc):
            return False
        raise InvalidFilter(f"filter cannot be evaluated on item {item_id!r}: {exc}") from exc


def make_search(
    datetime: str | None = None,
    bbox: str | None = None,
    ids: str | Sequence[str] | None = None,
    filter: str | None = None,
    sortby: str | None = None,
) -> Search:
    """Parse the request's filter parameters into a :class:`Search` (400 if malformed)."""
    start, end = parse_datetime(datetime)
    text = filter.strip() if filter else ""
    if text:
        compile_filter(text)
    return Search(
        start=start,
        end=end,
        bbox=parse_bbox(bbox),
        ids=parse_ids(ids),
        filter=text or None,
        sortby=parse_sortby(sortby),
    )
