"""Collections: STAC items loaded from files, their bands, and a spatial index.

A collection file is a STAC ItemCollection (GeoJSON FeatureCollection of items),
newline-delimited items, or a STAC Collection whose ``item`` links point to item files.
Items are parsed by pystac; each item's bands come from its assets (SPEC section 3).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import pystac
import rasterio
from shapely import STRtree
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from tiler.errors import CollectionLoadError

logger = logging.getLogger(__name__)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SKIP_ROLES = {"thumbnail", "overview", "visual", "metadata"}
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".nc")


@dataclass(frozen=True)
class Band:
    """Where one band of an item is stored and how to interpret its values."""

    name: str
    href: str
    bidx: int = 1
    nodata: float | None = None
    scale: float | None = None
    offset: float | None = None


@dataclass(frozen=True)
class Item:
    """One STAC item of a collection, with what the mosaic needs ready to use."""

    id: str
    datetime: dt.datetime
    geometry: BaseGeometry
    properties: dict[str, Any]
    bands: dict[str, Band]
    stac: dict[str, Any] = field(repr=False, compare=False)

    @property
    def days(self) -> float:
        """Acquisition time in days since 1970-01-01 (the ``_date`` band's unit)."""
        return (self.datetime - EPOCH).total_seconds() / 86400.0

    @property
    def isodatetime(self) -> str:
        """RFC 3339 datetime in UTC."""
        return self.datetime.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Collection:
    """A served collection: items in default order (datetime, then id) and their index."""

    id: str
    items: list[Item]
    title: str | None = None
    description: str | None = None
    renders: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None
    bands: list[str] = field(init=False)
    tree: STRtree = field(init=False, repr=False)
    times: numpy.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.items.sort(key=lambda it: (it.datetime, it.id))
        names: dict[str, None] = {}
        for item in self.items:
            names.update(dict.fromkeys(item.bands))
        self.bands = list(names)
        self.tree = STRtree([it.geometry for it in self.items])
        self.times = numpy.array([it.datetime.timestamp() for it in self.items], dtype="f8")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Union of the item footprints' bounds, in lon/lat."""
        if not self.items:
            return (-180.0, -90.0, 180.0, 90.0)
        b = numpy.array([it.geometry.bounds for it in self.items])
        return (
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        )

    @property
    def interval(self) -> tuple[str | None, str | None]:
        """First and last item datetime."""
        if not self.items:
            return (None, None)
        return (self.items[0].isodatetime, self.items[-1].isodatetime)

    @property
    def default_render(self) -> dict[str, Any]:
        """The first entry of ``renders``, else a generic default over the first bands."""
        if self.renders:
            return next(iter(self.renders.values()))
        return {"bands": self.bands[:3] if len(self.bands) >= 3 else self.bands[:1]}

    def intersecting(self, geom: BaseGeometry) -> list[int]:
        """Positions (in default order) of items whose footprint intersects ``geom``."""
        hits = self.tree.query(geom, predicate="intersects")
        return sorted(int(i) for i in hits)


def _is_url(href: str) -> bool:
    return "://" in href


def _resolve(href: str, base: Path) -> str:
    if _is_url(href) or Path(href).is_absolute():
        return href
    return str((base / href).resolve())


def _band_descriptions(href: str) -> list[str]:
    try:
        with rasterio.open(href) as src:
            return [d or f"b{i + 1}" for i, d in enumerate(src.descriptions)]
    except rasterio.errors.RasterioIOError:
        return []


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(value.lower(), value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def item_bands(
    assets: dict[str, dict[str, Any]], base: Path, layouts: dict[str, list[str]] | None = None
) -> dict[str, Band]:
    """Bands of an item from its asset dicts (single-band: name = asset key).

    An asset that declares neither ``raster:bands`` nor ``eo:bands`` is opened once per
    asset key (the first item's file) to learn its band count and descriptions; items of
    one collection share that layout through ``layouts``.

    Args:
        assets: the item's ``assets`` mapping (STAC dicts).
        base: folder against which relative hrefs are resolved.
        layouts: band names per undeclared asset key, filled and reused across items.

    Returns:
        Bands by name, single-band assets first, then bands of multi-band assets.
    """
    layouts = {} if layouts is None else layouts
    single: dict[str, Band] = {}
    multi: dict[str, Band] = {}
    for key, asset in assets.items():
        href = asset.get("href")
        roles = set(asset.get("roles") or [])
        media = str(asset.get("type") or "")
        if not href or roles & _SKIP_ROLES:
            continue
        if (
            "tiff" not in media
            and "jp2" not in media
            and not href.lower().endswith(_RASTER_SUFFIXES)
        ):
            continue
        path = _resolve(href, base)
        raster = asset.get("raster:bands") or []
        eo = asset.get("eo:bands") or asset.get("bands") or []
        count = max(len(raster), len(eo))
        described: list[str] = []
        if count == 0:
            if key not in layouts:
                layouts[key] = _band_descriptions(path)
            described = layouts[key]
            count = len(described)
        if count <= 1:
            info = raster[0] if raster else {}
            single[key] = Band(
                name=key,
                href=path,
                bidx=1,
                nodata=_number(info.get("nodata")),
                scale=_number(info.get("scale")),
                offset=_number(info.get("offset")),
            )
            continue
        names = [b.get("name") for b in eo] if eo else described
        if not names or not all(names):
            names = _band_descriptions(path) or [f"{key}_b{i + 1}" for i in range(count)]
        for i, name in enumerate(names):
            info = raster[i] if i < len(raster) else {}
            multi.setdefault(
                str(name),
                Band(
                    name=str(name),
                    href=path,
                    bidx=i + 1,
                    nodata=_number(info.get("nodata")),
                    scale=_number(info.get("scale")),
                    offset=_number(info.get("offset")),
                ),
            )
    for name, band in multi.items():
        single.setdefault(name, band)
    return single


def make_item(d: dict[str, Any], base: Path, layouts: dict[str, list[str]] | None = None) -> Item:
    """Build an :class:`Item` from a STAC item dict (validated through pystac).

    Args:
        d: the STAC item as a dict.
        base: folder against which relative hrefs are resolved.
        layouts: band layouts of undeclared assets, shared across a collection's items.

    Returns:
        The item.

    Raises:
        CollectionLoadError: the dict is not a STAC item with a datetime and a geometry.
    """
    try:
        item = pystac.Item.from_dict(d, preserve_dict=True, migrate=False)
    except Exception as exc:
        raise CollectionLoadError(f"not a STAC item ({d.get('id')!r}): {exc}") from exc
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        raise CollectionLoadError(f"item {item.id!r} has no datetime")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if d.get("geometry"):
        geom = shape(d["geometry"])
    elif d.get("bbox"):
        geom = (
            box(*d["bbox"][:2], *d["bbox"][-2:])
            if len(d["bbox"]) == 4
            else box(d["bbox"][0], d["bbox"][1], d["bbox"][3], d["bbox"][4])
        )
    else:
        raise CollectionLoadError(f"item {item.id!r} has neither geometry nor bbox")
    bands = item_bands(d.get("assets", {}), base, layouts)
    if not bands:
        raise CollectionLoadError(f"item {item.id!r} has no raster asset")
    props = dict(d.get("properties", {}))
    return Item(
        id=item.id,
        datetime=when.astimezone(dt.UTC),
        geometry=geom,
        properties=props,
        bands=bands,
        stac=d,
    )


def _iter_item_dicts(path: Path) -> tuple[Iterable[dict[str, Any]], dict[str, Any]]:
    """Item dicts and the top-level document (empty for newline-delimited files)."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        # newline-delimited items
        lines = [ln for ln in stripped.splitlines() if ln.strip()]
        try:
            return [json.loads(ln) for ln in lines], {}
        except json.JSONDecodeError as exc:
            raise CollectionLoadError(f"{path.name}: not JSON nor NDJSON: {exc}") from exc
    if isinstance(doc, list):
        return doc, {}
    kind = doc.get("type")
    if kind == "FeatureCollection":
        return doc.get("features", []), doc
    if kind == "Feature":
        return [doc], {}
    if kind == "Collection":
        base = path.parent
        items = []
        for link in doc.get("links", []):
            if link.get("rel") == "item":
                href = _resolve(link["href"], base)
                items.append(json.loads(Path(href).read_text(encoding="utf-8")))
        return items, doc
    raise CollectionLoadError(
        f"{path.name}: expected a FeatureCollection of STAC items, newline-delimited items "
        f"or a STAC Collection, got type {kind!r}"
    )


def load_collection(path: Path | str, collection_id: str | None = None) -> Collection:
    """Load a collection file.

    Args:
        path: the collection file.
        collection_id: overrides the id (default: the items' ``collection``, else the
            file's stem).

    Returns:
        The collection, items in default order.

    Raises:
        CollectionLoadError: the file is missing or not STAC.
    """
    path = Path(path)
    if not path.is_file():
        raise CollectionLoadError(f"collection file not found: {path}")
    dicts, doc = _iter_item_dicts(path)
    base = path.parent.resolve()
    items: list[Item] = []
    ids: set[str] = set()
    layouts: dict[str, list[str]] = {}
    for d in dicts:
        item = make_item(d, base, layouts)
        if item.id in ids:
            raise CollectionLoadError(f"{path.name}: duplicate item id {item.id!r}")
        ids.add(item.id)
        items.append(item)
    if collection_id is None:
        from_items = {d.get("collection") for d in dicts} if dicts else set()
        if doc.get("type") == "Collection":
            collection_id = doc.get("id")
        elif len(from_items) == 1 and None not in from_items:
            collection_id = str(from_items.pop())
        else:
            collection_id = path.stem
    logger.info("loaded collection %s: %d items from %s", collection_id, len(items), path)
    return Collection(
        id=str(collection_id),
        items=items,
        title=doc.get("title"),
        description=doc.get("description"),
        renders=dict(doc.get("renders") or {}),
        source=path,
    )


def load_collections(paths: Sequence[Path | str]) -> dict[str, Collection]:
    """Load several collection files into a mapping by id (ids must be unique)."""
    out: dict[str, Collection] = {}
    for p in paths:
        col = load_collection(p)
        if col.id in out:
            raise CollectionLoadError(f"two collection files have the id {col.id!r}")
        out[col.id] = col
    return out
