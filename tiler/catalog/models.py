"""What a collection is made of: items, their bands, and the collection's description.

These are plain values shared by every catalogue (in memory, PgSTAC, STAC API) and by the
engine; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry

from tiler.errors import InvalidBands

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

    ``data_type`` is the ``raster:bands`` data type the item declares, if any;
    ``common_name`` the ``eo:bands`` / ``bands`` common name (``red``, ``nir``, ...), which
    only describes (reads never use it).
    """

    name: str
    href: str
    bidx: int = 1
    nodata: float | None = None
    scale: float | None = None
    offset: float | None = None
    data_type: str | None = None
    common_name: str | None = field(default=None, compare=False)


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
        aliases: common names (``eo:bands`` / ``bands``) that are not band names, each with
            the band names that declare it, in band order (more than one: ambiguous).
        data_types: the data type of each band whose type the catalogue knows when it
            loads (``raster:bands`` ``data_type``), by band name; a band left out is of
            unknown type (checks that need it let the read decide).
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
    aliases: dict[str, list[str]] = field(default_factory=dict)
    data_types: dict[str, str] = field(default_factory=dict)

    @property
    def default_render(self) -> dict[str, Any]:
        """The visualisation a request without ``preset`` starts from.

        The first entry of ``renders`` when it declares a ``quality``; else, for a
        collection with a scene classification (``SCL``) or Landsat ``QA_PIXEL`` band,
        :func:`classification_render`; else the first entry of ``renders``, else a
        generic default over the first bands (no quality).
        """
        first = next(iter(self.renders.values()), None)
        if first is not None and first.get("quality") is not None:
            return first
        builtin = classification_render(self.bands, self.band_name)
        if builtin is not None:
            return builtin
        if first is not None:
            return first
        return {"bands": self.bands[:3] if len(self.bands) >= 3 else self.bands[:1]}

    def band_name(self, name: str) -> str | None:
        """The band ``name`` means: a band name itself, or the one band of a common name.

        Returns:
            The band name, or None when ``name`` is neither (or an ambiguous common name).
        """
        if name in self.bands:
            return name
        named = self.aliases.get(name)
        return named[0] if named is not None and len(named) == 1 else None

    def resolve_band(self, name: str, also: Sequence[str] = ()) -> str:
        """The band name ``name`` means, for a request: itself, or its common name's band.

        Args:
            name: a band name, a common name, or one of ``also`` (kept as it is).
            also: other names allowed as they are (derived output bands).

        Raises:
            InvalidBands: an unknown name (the bands and common names are listed), or a
                common name that several bands declare (those are listed).
        """
        if name in also or name in self.bands:
            return name
        named = self.aliases.get(name)
        if named is None:
            raise InvalidBands(f"unknown band {name[:80]!r}; {self.describe_names(also)}")
        if len(named) > 1:
            raise InvalidBands(
                f"band name {name!r} is a common name of {len(named)} bands of {self.id}: "
                f"{', '.join(named)}; name one of them"
            )
        return named[0]

    def describe_names(self, also: Sequence[str] = ()) -> str:
        """What band names a request may use, for a message."""
        text = f"bands of {self.id}: {', '.join([*self.bands, *also])}"
        usable = [f"{a} ({n[0]})" for a, n in self.aliases.items() if len(n) == 1]
        if usable:
            text += f"; common names: {', '.join(usable)}"
        return text


def band_aliases(
    pairs: Iterable[tuple[str, str | None]], bands: Sequence[str]
) -> dict[str, list[str]]:
    """Common names as aliases: each with the bands that declare it, in band order.

    A common name that is itself a band name is left out (a band name always means its
    band), as are bands not in ``bands``.

    Args:
        pairs: (band name, common name or None), in any order, repeats allowed.
        bands: the collection's band names, in order.
    """
    order = {name: i for i, name in enumerate(bands)}
    named: dict[str, set[str]] = {}
    for band, common in pairs:
        if common and band in order and common not in order:
            named.setdefault(common, set()).add(band)
    firsts = sorted(named, key=lambda c: min(order[b] for b in named[c]))
    return {c: sorted(named[c], key=order.__getitem__) for c in firsts}


def declared_data_types(bands: Iterable[Band], names: Sequence[str]) -> dict[str, str]:
    """The data type of each of ``names`` that ``bands`` declare: the first one declared.

    Args:
        bands: bands of items (or of ``item_assets``), in collection order.
        names: the collection's band names; the result follows their order.
    """
    wanted = set(names)
    found: dict[str, str] = {}
    for band in bands:
        if band.data_type is not None and band.name in wanted and band.name not in found:
            found[band.name] = band.data_type
            if len(found) == len(wanted):
                break
    return {name: found[name] for name in names if name in found}


# ---------------------------------------------------------------------------------------
# default qualities of Sentinel-2 L2A (SCL) and Landsat Collection 2 (QA_PIXEL)

#: Sentinel-2 L2A scene classes (SCL) ranked as a quality (higher wins; equal: collection
#: order): clear land, vegetation and water first, then snow/ice, unclassified, dark
#: areas (topographic shadow), thin cirrus, cloud shadow, cloud medium probability, cloud
#: high probability, saturated or defective; no data (0) and unknown classes never win.
SCL_RANKS: dict[int, int] = {4: 9, 5: 9, 6: 9, 11: 8, 7: 7, 2: 6, 10: 5, 3: 4, 8: 3, 9: 2, 1: 1}

#: Landsat Collection 2 QA_PIXEL flags, worst first: (bits, rank); the first flag set
#: decides. Fill (bit 0) never wins; no flag set (not clear, e.g. low-confidence cloud
#: dilation) ranks :data:`QA_PIXEL_OTHER`.
QA_PIXEL_FLAGS: tuple[tuple[tuple[int, ...], int | None], ...] = (
    ((0,), None),  # fill
    ((3,), 2),  # cloud
    ((1,), 3),  # dilated cloud
    ((4,), 4),  # cloud shadow
    ((2,), 5),  # cirrus (Landsat 8-9)
    ((5,), 8),  # snow
    ((6, 7), 9),  # clear, water
)
QA_PIXEL_OTHER = 7

#: Visualisation of the built-in defaults: true colour in stored values
_S2_VIS = {"min": 0, "max": 4500}  # Earth Engine's example (L2A digital numbers)
_LANDSAT_VIS = {"min": 7273, "max": 18182}  # reflectance 0 to 0.3 (x 2.75e-5 - 0.2)


def scl_quality(band: str) -> str:
    """The default quality over a scene classification band, as an expression.

    ``where((SCL==4)|(SCL==5)|(SCL==6), 9, where(SCL==11, 8, ... nan))`` by
    :data:`SCL_RANKS`.
    """
    by_rank: dict[int, list[int]] = {}
    for value, rank in SCL_RANKS.items():
        by_rank.setdefault(rank, []).append(value)
    text = "nan"
    for rank in sorted(by_rank):
        test = "|".join(f"({band}=={v})" for v in sorted(by_rank[rank]))
        if len(by_rank[rank]) == 1:
            test = f"{band}=={by_rank[rank][0]}"
        text = f"where({test}, {rank}, {text})"
    return text


def bit_test(band: str, bit: int) -> str:
    """An expression true where ``bit`` of an unsigned integer band is set.

    ``band % 2**(bit+1) >= 2**bit``: exact in float64 for integers below 2**53.
    """
    return f"{band} % {2 ** (bit + 1)} >= {2**bit}"


def qa_pixel_quality(band: str) -> str:
    """The default quality over a Landsat Collection 2 ``QA_PIXEL`` band, as an expression.

    Nested ``where`` over bit tests (:func:`bit_test`) by :data:`QA_PIXEL_FLAGS`.
    """
    text = str(QA_PIXEL_OTHER)
    for bits, rank in reversed(QA_PIXEL_FLAGS):
        tests = [bit_test(band, b) for b in bits]
        test = tests[0] if len(tests) == 1 else "|".join(f"({t})" for t in tests)
        text = f"where({test}, {'nan' if rank is None else rank}, {text})"
    return text


def classification_render(
    bands: Sequence[str], band_name: Callable[[str], str | None]
) -> dict[str, Any] | None:
    """The built-in default of a collection with an ``SCL`` or ``QA_PIXEL`` band, or None.

    Quality :func:`scl_quality` (Sentinel-2 L2A) or :func:`qa_pixel_quality` (Landsat
    Collection 2), matched case-insensitively (``SCL``, ``scl``, ``qa_pixel``); true
    colour bands by common name (``red``, ``green``, ``blue``), else ``B04,B03,B02``.

    Args:
        bands: the collection's band names.
        band_name: what a band or common name means in the collection (None: nothing).
    """
    lower = {b.lower(): b for b in reversed(bands)}
    if "scl" in lower:
        quality, vis, fallback = scl_quality(lower["scl"]), _S2_VIS, ("B04", "B03", "B02")
    elif "qa_pixel" in lower:
        quality, vis = qa_pixel_quality(lower["qa_pixel"]), _LANDSAT_VIS
        fallback = ("SR_B4", "SR_B3", "SR_B2")
    else:
        return None
    colour = [band_name(c) for c in ("red", "green", "blue")]
    if any(c is None for c in colour):
        colour = [band_name(c) for c in fallback]
    out: dict[str, Any] = {"quality": quality}
    if all(c is not None for c in colour):
        out.update(bands=colour, **vis)
    else:
        out["bands"] = [lower.get("scl") or lower["qa_pixel"]]
    return out


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
