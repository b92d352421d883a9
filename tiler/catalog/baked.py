"""Baked layers: a COG made by ``tiler export``, served as a layer of its collection.

An export records what it computed in its GDAL metadata tags (:func:`export_tags`): the
collection, the quality expression, the bands, the search (datetime, filter, ids, sortby)
and unscale, and the tool's version. A :class:`BakedLayer` is those tags parsed back, with
the file it came from (named by the operator only: ``--baked NAME=PATH_OR_URL`` or
``TILER_BAKED``). It answers a tile request only when the request asks for exactly what
was computed (:meth:`BakedLayer.matches`): same collection, same quality expression (as
the parser normalises it), same filters as parsed :class:`~tiler.catalog.filters.Search`
objects (the CQL2 filter compared as its parsed tree, the default order spelt out), same
unscale, no bbox filter and no nodata override. Anything else is not this layer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tiler.catalog.filters import Search, SortKey, compile_filter, parse_rfc3339

#: the tags' prefix; FORMAT is the version of this layout
PREFIX = "TILER_"
FORMAT = "1"
#: the validity band's values (the band after the output bands of an export)
VALID, MASKED = 255, 0
#: the default order of every catalogue (item id ascending always breaks ties last)
_DEFAULT_ORDER = (SortKey("datetime"),)


class BakedLayerError(ValueError):
    """A file is not a baked layer (its tags are missing or malformed)."""


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def search_document(search: Search) -> dict[str, Any]:
    """The item filters and order of ``search`` as JSON (its bbox is not part of it)."""
    return {
        "datetime": [_iso(search.start), _iso(search.end)],
        "filter": search.filter,
        "ids": sorted(search.ids) if search.ids is not None else None,
        "sortby": [[k.field, k.descending] for k in search.sortby],
    }


def parse_search(document: Mapping[str, Any]) -> Search:
    """The :class:`Search` of :func:`search_document`'s JSON.

    Raises:
        BakedLayerError: a malformed document.
    """
    try:
        start, end = (None if v is None else parse_rfc3339(str(v)) for v in document["datetime"])
        ids = document.get("ids")
        text = document.get("filter")
        if text:
            compile_filter(str(text))
        return Search(
            start=start,
            end=end,
            ids=frozenset(str(i) for i in ids) if ids is not None else None,
            filter=str(text) if text else None,
            sortby=tuple(SortKey(str(f), bool(d)) for f, d in document.get("sortby") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:  # InvalidFilter is a BadRequest, not these
        raise BakedLayerError(f"malformed search tag: {exc}") from exc


def export_tags(
    collection: str,
    quality: str,
    bands: Sequence[str],
    search: Search,
    unscale: bool,
    version: str,
) -> dict[str, str]:
    """The GDAL metadata tags an export writes: what it computed.

    Args:
        collection: the collection id.
        quality: the quality expression, as the parser normalised it.
        bands: the output bands (band names and derived bands), in band order.
        search: the export's filters and order.
        unscale: scale/offset applied.
        version: the tool's version.
    """
    return {
        f"{PREFIX}FORMAT": FORMAT,
        f"{PREFIX}COLLECTION": collection,
        f"{PREFIX}QUALITY": quality,
        f"{PREFIX}BANDS": json.dumps(list(bands)),
        f"{PREFIX}SEARCH": json.dumps(search_document(search), sort_keys=True),
        f"{PREFIX}UNSCALE": "true" if unscale else "false",
        f"{PREFIX}VERSION": version,
    }


def _canonical_order(sortby: tuple[SortKey, ...]) -> tuple[SortKey, ...]:
    """``sortby`` with the default spelt out and a final ``id`` ascending left out."""
    keys = sortby or _DEFAULT_ORDER
    if len(keys) > 1 and keys[-1] == SortKey("id"):
        keys = keys[:-1]
    return keys


def _canonical_filter(text: str | None) -> str | None:
    """The filter as its parsed CQL2 tree (JSON, keys sorted): spelling does not count."""
    if not text:
        return None
    return json.dumps(compile_filter(text).to_json(), sort_keys=True)


def same_selection(a: Search, b: Search) -> bool:
    """Whether two searches select and order the same items everywhere (bbox excluded)."""
    return (
        a.start == b.start
        and a.end == b.end
        and a.ids == b.ids
        and _canonical_filter(a.filter) == _canonical_filter(b.filter)
        and _canonical_order(a.sortby) == _canonical_order(b.sortby)
    )


@dataclass(frozen=True)
class Asked:
    """What a request computes, as a baked layer is matched against it.

    Attributes:
        collection: the collection id.
        quality: the quality expression, as the parser normalised it.
        search: the filters and order; a bbox filter never matches (it changes which
            items a pixel may come from).
        unscale: scale/offset applied.
        nodata: a nodata override (any override never matches).
    """

    collection: str
    quality: str
    search: Search
    unscale: bool = False
    nodata: float | None = None


@dataclass(frozen=True)
class BakedLayer:
    """An export served as a layer: what it computed and where it is.

    Attributes:
        name: the operator's name of the layer.
        href: the file or URL it is read from (never shown to clients).
        collection: the collection id it was computed from.
        quality: the quality expression (normalised text).
        bands: its bands, in order (the validity band follows them in the file).
        search: its filters and order.
        unscale: scale/offset applied.
        version: the version of the tool that made it.
        bounds: its extent in lon/lat (west, south, east, north).
        dtype: the file's data type.
        types: the type of each band in live tiles, where known (see
            :func:`tiler.engine.baked.band_types`); a baked tile has the type a live one has.
    """

    name: str
    href: str = field(repr=False)
    collection: str
    quality: str
    bands: tuple[str, ...]
    search: Search
    unscale: bool
    version: str
    bounds: tuple[float, float, float, float]
    dtype: str
    types: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_tags(
        cls,
        name: str,
        href: str,
        tags: Mapping[str, str],
        bounds: tuple[float, float, float, float],
        dtype: str,
    ) -> BakedLayer:
        """Parse an export's tags.

        Raises:
            BakedLayerError: a file without the tags of ``tiler export``, or malformed ones.
        """
        missing = [
            k
            for k in ("FORMAT", "COLLECTION", "QUALITY", "BANDS", "SEARCH", "UNSCALE")
            if f"{PREFIX}{k}" not in tags
        ]
        if missing:
            raise BakedLayerError(
                f"baked layer {name!r} has no {PREFIX}{missing[0]} tag: not a COG made by "
                "tiler export (or made before exports recorded what they computed)"
            )
        if tags[f"{PREFIX}FORMAT"] != FORMAT:
            raise BakedLayerError(
                f"baked layer {name!r}: tags of format {tags[f'{PREFIX}FORMAT']!r}, this "
                f"server reads format {FORMAT}"
            )
        try:
            bands = json.loads(tags[f"{PREFIX}BANDS"])
            search = json.loads(tags[f"{PREFIX}SEARCH"])
        except ValueError as exc:
            raise BakedLayerError(f"baked layer {name!r}: malformed tag ({exc})") from exc
        if not isinstance(bands, list) or not isinstance(search, dict):
            raise BakedLayerError(f"baked layer {name!r}: malformed bands or search tag")
        return cls(
            name=name,
            href=href,
            collection=tags[f"{PREFIX}COLLECTION"],
            quality=tags[f"{PREFIX}QUALITY"],
            bands=tuple(str(b) for b in bands),
            search=parse_search(search),
            unscale=tags[f"{PREFIX}UNSCALE"] == "true",
            version=tags.get(f"{PREFIX}VERSION", ""),
            bounds=bounds,
            dtype=dtype,
        )

    def matches(self, asked: Asked) -> bool:
        """Whether a request computes what this layer holds (its bands aside)."""
        return (
            asked.collection == self.collection
            and asked.quality == self.quality
            and asked.unscale == self.unscale
            and asked.nodata is None
            and asked.search.bbox is None
            and same_selection(asked.search, self.search)
        )

    def missing(self, bands: Sequence[str]) -> list[str]:
        """The bands of ``bands`` this layer does not hold."""
        return [b for b in bands if b not in self.bands]

    def describe(self) -> dict[str, Any]:
        """What clients see of the layer (never its path or URL), as STAC ``renders`` are.

        ``minmax_zoom``: from zoom 0; the top is the collection's.
        """
        start, end = self.search.start, self.search.end
        datetime = None
        if start is not None or end is not None:
            datetime = f"{_iso(start) or '..'}/{_iso(end) or '..'}"
        return {
            "title": f"{self.name} (baked)",
            "quality": self.quality,
            "bands": list(self.bands),
            "datetime": datetime,
            "filter": self.search.filter,
            "ids": sorted(self.search.ids) if self.search.ids is not None else None,
            "sortby": ",".join(
                f"{'-' if k.descending else ''}{k.field}" for k in self.search.sortby
            )
            or None,
            "unscale": self.unscale,
            "bounds": list(self.bounds),
            "minmax_zoom": [0, None],
            "version": self.version,
        }


class BakedLayers:
    """The served baked layers, by collection.

    Args:
        layers: the layers (their names unique).
    """

    def __init__(self, layers: Sequence[BakedLayer] = ()) -> None:
        self.layers = list(layers)

    def __bool__(self) -> bool:
        return bool(self.layers)

    def of(self, collection: str) -> list[BakedLayer]:
        """The layers of ``collection``, in the operator's order."""
        return [layer for layer in self.layers if layer.collection == collection]

    def matching(self, asked: Asked) -> list[BakedLayer]:
        """The layers that computed what a request asks (see :meth:`BakedLayer.matches`)."""
        return [layer for layer in self.of(asked.collection) if layer.matches(asked)]
