"""What a collection is made of: items, their bands, and the collection's description.

These are plain values shared by every catalogue (in memory, PgSTAC, STAC API) and by the
engine; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry

try:  # faster than the standard library on large documents
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    orjson = None  # type: ignore[assignment]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def rfc3339(moment: dt.datetime) -> str:
    """An aware datetime as RFC 3339 text in UTC, ending in ``Z``."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def loads(data: bytes | str) -> Any:
    """Parse JSON (orjson when installed; the standard library for what it rejects)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # e.g. NaN / Infinity literals, integers beyond 64 bits
    return json.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (orjson: NaN and infinities become null)."""
    if orjson is not None:
        try:
            return orjson.dumps(obj)
        except TypeError:  # integers beyond 64 bits
            pass
    return dumps_lenient(obj)


def dumps_lenient(obj: Any) -> bytes:
    """Compact JSON bytes, NaN and infinities kept as the literals Python writes."""
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Band:
    """Where one band of an item is stored and how to interpret its values.

    ``data_type`` is the ``raster:bands`` data type the item declares, if any.
    """

    name: str
    href: str
    bidx: int = 1
    nodata: float | None = None
    scale: float | None = None
    offset: float | None = None
    data_type: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One STAC item of a collection, with what the mosaic needs ready to use.

    ``raw`` is the item's STAC document as JSON bytes; :attr:`stac` decodes it.
    """

    id: str
    datetime: dt.datetime
    geometry: BaseGeometry
    properties: dict[str, Any]
    bands: dict[str, Band]
    raw: bytes = field(default=b"{}", repr=False, compare=False)

    @property
    def stac(self) -> dict[str, Any]:
        """The STAC item as a dict (decoded on each access: a fresh copy)."""
        doc: dict[str, Any] = loads(self.raw)
        return doc

    @property
    def days(self) -> float:
        """Acquisition time in days since 1970-01-01 (the ``_date`` band's unit)."""
        return (self.datetime - EPOCH).total_seconds() / 86400.0

    @property
    def day_of_year(self) -> float:
        """Day of year of the acquisition, 1-366 (the ``_doy`` band's unit)."""
        return float(self.datetime.timetuple().tm_yday)

    @property
    def isodatetime(self) -> str:
        """RFC 3339 datetime in UTC."""
        return rfc3339(self.datetime)


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's description: what ``/collections/{id}`` shows and layers default to.

    Attributes:
        id: the collection id.
        title: human title (None: the id).
        description: free text.
        bounds: union of the item footprints' bounds in lon/lat.
        interval: first and last item datetime (RFC 3339, None when empty).
        bands: band names of the items, in first-seen order.
        renders: named visualisations (STAC ``renders``), in document order.
        item_count: number of items (None: the catalogue cannot tell).
        summaries: STAC-style summaries of item properties.
    """

    id: str
    title: str | None
    description: str | None
    bounds: tuple[float, float, float, float]
    interval: tuple[str | None, str | None]
    bands: list[str]
    renders: dict[str, dict[str, Any]]
    item_count: int | None
    summaries: dict[str, Any] = field(default_factory=dict)

    @property
    def default_render(self) -> dict[str, Any]:
        """The first entry of ``renders``, else a generic default over the first bands."""
        if self.renders:
            return next(iter(self.renders.values()))
        return {"bands": self.bands[:3] if len(self.bands) >= 3 else self.bands[:1]}


def summarise(items: list[Item], limit: int = 20) -> dict[str, Any]:
    """STAC-style summaries of item properties: ranges of numbers, sets of few strings."""
    values: dict[str, list[Any]] = {}
    for item in items:
        for key, value in item.properties.items():
            if key != "datetime" and isinstance(value, int | float | str) and value is not True:
                values.setdefault(key, []).append(value)
    out: dict[str, Any] = {}
    for key, vals in values.items():
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            out[key] = {"minimum": min(vals), "maximum": max(vals)}
        elif len(distinct := sorted({str(v) for v in vals})) <= limit:
            out[key] = distinct
    return out
