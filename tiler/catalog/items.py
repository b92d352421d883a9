"""STAC item dicts into :class:`~tiler.catalog.models.Item`: checks, datetime, footprint.

Built for large collections: every item is checked for what the server relies on (a
``Feature`` with an id, a datetime, a geometry or bbox, and a raster asset), and the
footprints of many items are built in one vectorised call (shapely), not one per item.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import pystac
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from tiler.catalog.assets import item_bands
from tiler.catalog.filters import parse_rfc3339
from tiler.catalog.models import Band, Item, dumps
from tiler.errors import CollectionLoadError


def _parse_time(value: Any, what: str, item_id: str) -> dt.datetime:
    if not isinstance(value, str):
        raise CollectionLoadError(f"item {item_id!r}: {what} {value!r} is not a string")
    try:
        return parse_rfc3339(value)
    except (ValueError, OverflowError):
        raise CollectionLoadError(
            f"item {item_id!r}: {what} {value!r} is not an RFC 3339 datetime"
        ) from None


def _item_datetime(props: dict[str, Any], item_id: str) -> dt.datetime:
    value = props.get("datetime")
    if value is not None:
        return _parse_time(value, "datetime", item_id)
    start = props.get("start_datetime")
    if start is None:
        raise CollectionLoadError(f"item {item_id!r} has no datetime nor start_datetime")
    return _parse_time(start, "start_datetime", item_id)


def check_with_pystac(d: dict[str, Any]) -> None:
    """Parse an item with pystac too (a second, independent reading of the document).

    Raises:
        CollectionLoadError: pystac rejects it.
    """
    try:
        pystac.Item.from_dict(d, preserve_dict=True, migrate=False)
    # what pystac raises for documents it cannot read
    except (pystac.STACError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CollectionLoadError(f"not a STAC item ({d.get('id')!r}): {exc}") from exc


@dataclass
class Pending:
    """An item whose footprint is still to be built (all footprints at once)."""

    id: str
    datetime: dt.datetime
    properties: dict[str, Any]
    bands: dict[str, Band]
    raw: bytes
    geometry: Any
    bbox: Any
    shape: BaseGeometry | None = None


def parse_item(d: Any, base: Path, layouts: dict[str, list[str]], raw: bytes | None) -> Pending:
    """Check an item dict and extract what an :class:`Item` needs but its footprint."""
    if not isinstance(d, dict):
        raise CollectionLoadError(f"not a STAC item: a JSON {type(d).__name__}, not an object")
    kind = d.get("type")
    item_id = d.get("id")
    if kind != "Feature":
        raise CollectionLoadError(
            f"not a STAC item ({item_id!r}): type is {kind!r}, expected 'Feature'"
        )
    if not isinstance(item_id, str) or not item_id:
        raise CollectionLoadError(f"not a STAC item: id {item_id!r} is not a non-empty string")
    props = d.get("properties")
    if not isinstance(props, dict):
        raise CollectionLoadError(f"item {item_id!r}: properties is not an object")
    when = _item_datetime(props, item_id)
    geometry = d.get("geometry")
    bbox = d.get("bbox")
    if not geometry and not bbox:
        raise CollectionLoadError(f"item {item_id!r} has neither geometry nor bbox")
    assets = d.get("assets") or {}
    if not isinstance(assets, dict):
        raise CollectionLoadError(f"item {item_id!r}: assets is not an object")
    bands = item_bands(assets, base, layouts)
    if not bands:
        raise CollectionLoadError(
            f"item {item_id!r} has no raster asset (a GeoTIFF/JP2 asset that is not a "
            f"thumbnail, overview, visual or metadata); asset keys: {', '.join(assets)}"
        )
    return Pending(
        id=item_id,
        datetime=when,
        properties=props,
        bands=bands,
        raw=dumps(d) if raw is None else raw,
        geometry=geometry,
        bbox=bbox,
    )


def _bbox_box(item_id: str, bbox: Any) -> BaseGeometry:
    try:
        values = [float(v) for v in bbox]
        if len(values) == 4:
            return box(*values)
        if len(values) == 6:
            return box(values[0], values[1], values[3], values[4])
    except (TypeError, ValueError):
        pass
    raise CollectionLoadError(f"item {item_id!r}: bbox {bbox!r} is not 4 or 6 numbers")


def _one_shape(p: Pending) -> BaseGeometry:
    if p.shape is not None:
        return p.shape
    if not p.geometry:
        return _bbox_box(p.id, p.bbox)
    try:
        geom = shape(p.geometry)
    # shapely raises these for GeoJSON it cannot read
    except (
        shapely.errors.GeometryTypeError,
        shapely.errors.GEOSException,
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        AttributeError,
    ) as exc:
        raise CollectionLoadError(f"item {p.id!r}: geometry is not GeoJSON: {exc}") from exc
    if geom.is_empty:
        raise CollectionLoadError(f"item {p.id!r}: geometry is empty")
    return geom


def _polygons(pending: list[Pending]) -> None:
    """Set ``shape`` of the items with a GeoJSON Polygon, in one vectorised call."""
    coords: list[Any] = []
    rings: list[int] = [0]
    polys: list[int] = [0]
    which: list[Pending] = []
    for p in pending:
        g = p.geometry
        if p.shape is not None or not isinstance(g, dict) or g.get("type") != "Polygon":
            continue
        parts = g.get("coordinates")
        if not isinstance(parts, list) or not parts or not all(type(r) is list for r in parts):
            continue  # built one by one, which names the bad item
        for ring in parts:
            coords.extend(ring)
            rings.append(len(coords))
        polys.append(len(rings) - 1)
        which.append(p)
    if not which:
        return
    try:
        xy = numpy.asarray(coords, dtype="float64")
        if xy.ndim != 2 or xy.shape[1] not in (2, 3):
            return
        geoms = shapely.from_ragged_array(
            shapely.GeometryType.POLYGON,
            xy,
            (numpy.asarray(rings, dtype="int64"), numpy.asarray(polys, dtype="int64")),
        )
    except (ValueError, TypeError, shapely.errors.GEOSException):
        return  # built one by one, which names the bad item
    for p, g in zip(which, geoms, strict=True):
        if not g.is_empty:
            p.shape = g


def build_items(pending: list[Pending]) -> list[Item]:
    """The items of ``pending``, their polygon footprints built in one vectorised call."""
    _polygons(pending)
    return [
        Item(
            id=p.id,
            datetime=p.datetime,
            geometry=_one_shape(p),
            properties=p.properties,
            bands=p.bands,
            raw=p.raw,
        )
        for p in pending
    ]
