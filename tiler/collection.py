"""Collections: STAC items loaded from files, their bands, and a spatial index.

A collection file is a STAC ItemCollection (GeoJSON FeatureCollection of items), a JSON
array of items, newline-delimited items (NDJSON), a STAC Collection (or Catalog) whose
``item`` links point to item files, or a stac-geoparquet file (``.parquet`` /
``.geoparquet``, read with the ``stac-geoparquet`` package). Each item's bands come from
its assets (SPEC section 3).

Loading is built for large collections (100,000 items in a few seconds):

- JSON is parsed with ``orjson`` when it is installed (the standard library otherwise,
  and for files that orjson rejects, e.g. with ``NaN`` literals).
- Every item is checked for what the server relies on (a ``Feature`` with an id, a
  datetime, a geometry or bbox, and a raster asset); ``pystac.Item.from_dict`` parses a
  sample of the items (all of a collection of up to 256, a few hundred spread over a
  larger one), as it costs ~0.6 ms per item, several times the rest of the loading.
- Footprints are built in one vectorised call per file (shapely), not one per item.
- An item keeps its STAC document as compact JSON bytes; :attr:`Item.stac` decodes it on
  use (a parsed dict costs ~4x the memory).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import pystac
import pystac.utils
import rasterio
import shapely
from shapely import STRtree
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from tiler.errors import CollectionLoadError

try:  # ~4x faster than the standard library on large files
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    orjson = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SKIP_ROLES = {"thumbnail", "overview", "visual", "metadata"}
# renderings (RGB composites, previews) even where an asset declares no role, as Earth
# Search v0 items do ("visual": a 3-band TCI, "overview": its low-resolution copy)
_SKIP_KEYS = {"visual", "overview", "thumbnail", "preview", "rendered_preview"}
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".nc")
_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".geojsonl", ".geojsons", ".geojsonseq")
_PARQUET_SUFFIXES = (".parquet", ".geoparquet")
_PYSTAC_SAMPLE = 256
_CHUNK = 4096


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
        return _loads(self.raw)  # type: ignore[no-any-return]

    @property
    def days(self) -> float:
        """Acquisition time in days since 1970-01-01 (the ``_date`` band's unit)."""
        return (self.datetime - EPOCH).total_seconds() / 86400.0

    @property
    def isodatetime(self) -> str:
        """RFC 3339 datetime in UTC."""
        return self.datetime.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(eq=False)
class Collection:
    """A served collection: items in default order (datetime, then id) and their index.

    Attributes:
        tree: spatial index of the item footprints (positions in ``items``).
        geoms: the item footprints (shapely geometries, object array), in ``items`` order.
        times: item datetimes as POSIX seconds (float64), in ``items`` order.
        cache: per-collection memo of the search module (filter results, sort ranks).
    """

    id: str
    items: list[Item]
    title: str | None = None
    description: str | None = None
    renders: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None
    bands: list[str] = field(init=False)
    tree: STRtree = field(init=False, repr=False)
    geoms: numpy.ndarray = field(init=False, repr=False)
    times: numpy.ndarray = field(init=False, repr=False)
    positions: dict[str, int] = field(init=False, repr=False)
    cache: dict[Any, Any] = field(init=False, repr=False, default_factory=dict)
    _bounds: tuple[float, float, float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.items.sort(key=lambda it: (it.datetime, it.id))
        names: dict[str, None] = {}
        for item in self.items:
            names.update(dict.fromkeys(item.bands))
        self.bands = list(names)
        geoms = numpy.empty(len(self.items), dtype=object)
        geoms[:] = [it.geometry for it in self.items]
        self.geoms = geoms
        self.tree = STRtree(geoms)
        self.times = numpy.array([it.datetime.timestamp() for it in self.items], dtype="f8")
        self.positions = {it.id: i for i, it in enumerate(self.items)}
        if len(geoms):
            b = shapely.bounds(geoms)
            self._bounds = (
                float(numpy.nanmin(b[:, 0])),
                float(numpy.nanmin(b[:, 1])),
                float(numpy.nanmax(b[:, 2])),
                float(numpy.nanmax(b[:, 3])),
            )
        else:
            self._bounds = (-180.0, -90.0, 180.0, 90.0)

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

    @property
    def default_render(self) -> dict[str, Any]:
        """The first entry of ``renders``, else a generic default over the first bands."""
        if self.renders:
            return next(iter(self.renders.values()))
        return {"bands": self.bands[:3] if len(self.bands) >= 3 else self.bands[:1]}

    def query(self, geom: BaseGeometry | None, exact: bool = True) -> numpy.ndarray:
        """Positions (unsorted int64 array) of items whose footprint intersects ``geom``.

        With ``exact=False``, those whose footprint's bounding box intersects the one of
        ``geom`` (a superset: refine it with :meth:`intersects`).
        """
        if geom is None:
            return numpy.arange(len(self.items), dtype="int64")
        if not exact:
            return numpy.asarray(self.tree.query(geom), dtype="int64")
        return numpy.asarray(self.tree.query(geom, predicate="intersects"), dtype="int64")

    def intersects(self, positions: numpy.ndarray, geom: BaseGeometry) -> numpy.ndarray:
        """Which of the items at ``positions`` have a footprint intersecting ``geom``."""
        shapely.prepare(geom)
        return numpy.asarray(shapely.intersects(self.geoms[positions], geom), dtype=bool)

    def intersecting(self, geom: BaseGeometry) -> list[int]:
        """Positions (in default order) of items whose footprint intersects ``geom``."""
        return sorted(int(i) for i in self.query(geom))


# ---------------------------------------------------------------------------------------
# JSON


def _loads(data: bytes | str) -> Any:
    """Parse JSON (orjson when installed; the standard library for what it rejects)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # e.g. NaN / Infinity literals, integers beyond 64 bits
    return json.loads(data)


def _dumps(obj: Any) -> bytes:
    """Compact JSON bytes (orjson: NaN and infinities become null)."""
    if orjson is not None:
        try:
            return orjson.dumps(obj)
        except TypeError:  # integers beyond 64 bits
            pass
    return _dumps_lenient(obj)


def _dumps_lenient(obj: Any) -> bytes:
    """Compact JSON bytes, NaN and infinities kept as the literals Python writes."""
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------
# bands


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


def _num(value: Any) -> float | None:
    t = type(value)
    if t is float or t is int:
        return float(value)
    return _number(value)


def _band(name: str, href: str, bidx: int, info: Any) -> Band:
    if type(info) is not dict or not info:
        return Band(name, href, bidx)
    get = info.get
    data_type = get("data_type")
    return Band(
        name,
        href,
        bidx,
        _num(get("nodata")),
        _num(get("scale")),
        _num(get("offset")),
        data_type if type(data_type) is str else None,
    )


def item_bands(
    assets: dict[str, dict[str, Any]], base: Path, layouts: dict[str, list[str]] | None = None
) -> dict[str, Band]:
    """Bands of an item from its asset dicts (single-band: name = asset key).

    Skipped: assets with a thumbnail, overview, visual or metadata role, renderings by
    key (``visual``, ``overview``, ``thumbnail``, ``preview``, ``rendered_preview``) and
    non-raster media. A local asset that declares neither ``raster:bands`` nor
    ``eo:bands`` is opened once per asset key (the first item's file) to learn its band
    count and descriptions; items of one collection share that layout through
    ``layouts``. A remote one (``http(s)://``, ``s3://``, ...) is never opened while
    loading: it is taken as single-band.

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
        if key in _SKIP_KEYS or not isinstance(asset, dict):
            continue
        href = asset.get("href")
        if not href or not isinstance(href, str):
            continue
        roles = asset.get("roles")
        if roles and not _SKIP_ROLES.isdisjoint(roles):
            continue
        media = asset.get("type") or ""
        if not isinstance(media, str):
            media = str(media)
        if (
            "tiff" not in media
            and "jp2" not in media
            and not href.lower().endswith(_RASTER_SUFFIXES)
        ):
            continue
        remote = "://" in href
        path = href if remote else _resolve(href, base)
        raster = asset.get("raster:bands") or ()
        eo = asset.get("eo:bands") or asset.get("bands") or ()
        count = len(raster) if len(raster) >= len(eo) else len(eo)
        described: list[str] = []
        if count == 0 and not remote:
            if key not in layouts:
                layouts[key] = _band_descriptions(path)
            described = layouts[key]
            count = len(described)
        if count <= 1:
            single[key] = _band(key, path, 1, raster[0] if raster else None)
            continue
        names = [b.get("name") if isinstance(b, dict) else None for b in eo] if eo else described
        if not names or not all(names):
            names = (None if remote else _band_descriptions(path)) or [
                f"{key}_b{i + 1}" for i in range(count)
            ]
        for i, name in enumerate(names):
            if str(name) not in multi:
                info = raster[i] if i < len(raster) else None
                multi[str(name)] = _band(str(name), path, i + 1, info)
    for name, band in multi.items():
        single.setdefault(name, band)
    return single


# ---------------------------------------------------------------------------------------
# items


def _parse_time(value: Any, what: str, item_id: str) -> dt.datetime:
    if not isinstance(value, str):
        raise CollectionLoadError(f"item {item_id!r}: {what} {value!r} is not a string")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        try:  # what Python's parser does not take (lower-case t/z, ...)
            when = pystac.utils.str_to_datetime(value)
        except (ValueError, OverflowError):
            raise CollectionLoadError(
                f"item {item_id!r}: {what} {value!r} is not an RFC 3339 datetime"
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def _item_datetime(props: dict[str, Any], item_id: str) -> dt.datetime:
    value = props.get("datetime")
    if value is not None:
        return _parse_time(value, "datetime", item_id)
    start = props.get("start_datetime")
    if start is None:
        raise CollectionLoadError(f"item {item_id!r} has no datetime nor start_datetime")
    return _parse_time(start, "start_datetime", item_id)


def _check_with_pystac(d: dict[str, Any]) -> None:
    try:
        pystac.Item.from_dict(d, preserve_dict=True, migrate=False)
    except Exception as exc:
        raise CollectionLoadError(f"not a STAC item ({d.get('id')!r}): {exc}") from exc


@dataclass
class _Pending:
    """An item whose footprint is still to be built (all footprints at once)."""

    id: str
    datetime: dt.datetime
    properties: dict[str, Any]
    bands: dict[str, Band]
    raw: bytes
    geometry: Any
    bbox: Any
    shape: BaseGeometry | None = None


def _parse_item(d: Any, base: Path, layouts: dict[str, list[str]], raw: bytes | None) -> _Pending:
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
    return _Pending(
        id=item_id,
        datetime=when,
        properties=props,
        bands=bands,
        raw=_dumps(d) if raw is None else raw,
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


def _one_shape(p: _Pending) -> BaseGeometry:
    if p.shape is not None:
        return p.shape
    if not p.geometry:
        return _bbox_box(p.id, p.bbox)
    try:
        geom = shape(p.geometry)
    except Exception as exc:
        raise CollectionLoadError(f"item {p.id!r}: geometry is not GeoJSON: {exc}") from exc
    if geom.is_empty:
        raise CollectionLoadError(f"item {p.id!r}: geometry is empty")
    return geom


def _polygons(pending: list[_Pending]) -> None:
    """Set ``shape`` of the items with a GeoJSON Polygon, in one vectorised call."""
    coords: list[Any] = []
    rings: list[int] = [0]
    polys: list[int] = [0]
    which: list[_Pending] = []
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


def _build_items(pending: list[_Pending]) -> list[Item]:
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


def make_item(d: dict[str, Any], base: Path, layouts: dict[str, list[str]] | None = None) -> Item:
    """Build an :class:`Item` from a STAC item dict (parsed by pystac too).

    Args:
        d: the STAC item as a dict.
        base: folder against which relative hrefs are resolved.
        layouts: band layouts of undeclared assets, shared across a collection's items.

    Returns:
        The item.

    Raises:
        CollectionLoadError: the dict is not a STAC item with a datetime and a geometry.
    """
    pending = _parse_item(d, base, {} if layouts is None else layouts, None)
    _check_with_pystac(d)
    return _build_items([pending])[0]


# ---------------------------------------------------------------------------------------
# files


@dataclass
class _Source:
    """Item dicts of a file (with their JSON bytes when at hand) and its top document."""

    records: Iterable[tuple[Any, bytes | None, Path]]
    doc: dict[str, Any]


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CollectionLoadError(f"cannot read {path}: {exc}") from exc
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _ndjson(path: Path, data: bytes) -> Iterator[tuple[Any, bytes | None, Path]]:
    base = path.parent
    for number, line in enumerate(data.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            yield _loads(line), line, base
        except ValueError as exc:
            raise CollectionLoadError(
                f"line {number} is not JSON ({exc}); newline-delimited files hold one "
                "STAC item per line"
            ) from None


def _linked_items(path: Path, doc: dict[str, Any]) -> Iterator[tuple[Any, bytes | None, Path]]:
    for link in doc.get("links") or []:
        if not isinstance(link, dict) or link.get("rel") != "item":
            continue
        href = link.get("href")
        if not isinstance(href, str) or _is_url(href):
            raise CollectionLoadError(
                f"item link {href!r} is not a local file (remote item links are not fetched)"
            )
        item_path = Path(_resolve(href, path.parent))
        if not item_path.is_file():
            raise CollectionLoadError(f"linked item file not found: {item_path}")
        data = _read_bytes(item_path)
        try:
            item = _loads(data)
        except ValueError as exc:
            raise CollectionLoadError(f"{item_path.name}: not JSON: {exc}") from None
        # relative asset hrefs are relative to the item's own file
        yield item, data.strip(), item_path.parent


def _serialised(
    dicts: list[Any], strict: bool, base: Path
) -> Iterator[tuple[Any, bytes | None, Path]]:
    """The items of a parsed document, each re-parsed from its own JSON bytes.

    Every item is first turned into bytes and its parsed objects released; the items are
    then parsed again one at a time. Objects kept from a single parse of a whole document
    would be scattered over all of its memory and pin it (~2.3x the memory after loading).
    """
    raws = []
    for i in range(len(dicts)):
        raws.append(_dumps(dicts[i]) if strict else _dumps_lenient(dicts[i]))
        dicts[i] = None
    dicts.clear()
    for i in range(len(raws)):
        raw = raws[i]
        raws[i] = b""
        yield _loads(raw), raw, base


_NON_SPACE = re.compile(rb"\S")


def _looks_ndjson(data: bytes) -> bool:
    """A first line that is a whole JSON object, and more after it."""
    first = _NON_SPACE.search(data)
    if first is None or data[first.start() : first.start() + 1] != b"{":
        return False
    end = data.find(b"\n", first.start())
    if end < 0 or _NON_SPACE.search(data, end) is None:
        return False
    try:
        return isinstance(_loads(data[first.start() : end]), dict)
    except ValueError:
        return False


def _json_source(path: Path) -> _Source:
    data = _read_bytes(path)
    base = path.parent
    if path.suffix.lower() in _NDJSON_SUFFIXES or _looks_ndjson(data):
        return _Source(_ndjson(path, data), {})
    strict = True
    try:
        doc = orjson.loads(data) if orjson is not None else json.loads(data)
    except ValueError:
        strict = False
        try:
            doc = json.loads(data)  # NaN / Infinity literals, integers beyond 64 bits
        except ValueError as exc:
            raise CollectionLoadError(
                f"{path.name}: not JSON nor newline-delimited JSON: {exc}. Expected a STAC "
                "FeatureCollection, items one per line, a STAC Collection or stac-geoparquet"
            ) from None
    del data
    if isinstance(doc, list):
        return _Source(_serialised(doc, strict, base), {})
    if not isinstance(doc, dict):
        raise CollectionLoadError(
            f"{path.name}: a JSON {type(doc).__name__}, expected a STAC FeatureCollection, "
            "items one per line or a STAC Collection"
        )
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.pop("features", None) or []
        if not isinstance(features, list):
            raise CollectionLoadError(f"{path.name}: features is not an array")
        return _Source(_serialised(features, strict, base), doc)
    if kind == "Feature":
        return _Source([(doc, None if strict else _dumps_lenient(doc), base)], {})
    if kind in ("Collection", "Catalog"):
        return _Source(_linked_items(path, doc), doc)
    raise CollectionLoadError(
        f"{path.name}: expected a FeatureCollection of STAC items, newline-delimited items "
        f"or a STAC Collection, got type {kind!r}"
    )


def _strip_nulls(d: dict[str, Any]) -> dict[str, Any]:
    """Drop the nulls that a stac-geoparquet schema gives to fields an item lacks."""
    props = d.get("properties")
    if isinstance(props, dict):
        d["properties"] = {k: v for k, v in props.items() if v is not None or k == "datetime"}
    return d


def _geoparquet_source(path: Path) -> _Source:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from stac_geoparquet.arrow import stac_table_to_items
    except ImportError as exc:
        raise CollectionLoadError(
            f"{path.name}: reading stac-geoparquet needs the stac-geoparquet package "
            f"(pip install stac-geoparquet): {exc}"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise CollectionLoadError(f"{path.name}: not a Parquet file: {exc}") from None
    names = set(parquet.schema_arrow.names)
    missing = {"id", "geometry"} - names
    if missing:
        raise CollectionLoadError(
            f"{path.name}: not stac-geoparquet: no column {', '.join(sorted(missing))}"
        )
    meta = parquet.schema_arrow.metadata or {}
    doc: dict[str, Any] = {}
    raw_meta = meta.get(b"stac-geoparquet")
    if raw_meta:
        try:
            info = _loads(raw_meta)
            collections = info.get("collections") or {}
            if len(collections) == 1:
                doc = dict(next(iter(collections.values())))
            elif isinstance(info.get("collection"), dict):
                doc = dict(info["collection"])
        except (json.JSONDecodeError, AttributeError):
            doc = {}

    def records() -> Iterator[tuple[Any, bytes | None, Path]]:
        try:
            for batch in parquet.iter_batches(batch_size=4096):
                table = pa.Table.from_batches([batch])
                # as bytes first, then parsed again one by one: see _serialised
                raws = [_dumps(_strip_nulls(d)) for d in stac_table_to_items(table)]
                del table, batch
                for i in range(len(raws)):
                    raw = raws[i]
                    raws[i] = b""
                    yield _loads(raw), raw, path.parent
        except CollectionLoadError:
            raise
        except Exception as exc:
            raise CollectionLoadError(f"not stac-geoparquet: {exc}") from exc

    return _Source(records(), doc)


def load_collection(path: Path | str, collection_id: str | None = None) -> Collection:
    """Load a collection file.

    Args:
        path: the collection file: JSON (FeatureCollection, array of items, one item, or
            a STAC Collection/Catalog with item links), newline-delimited JSON, or
            stac-geoparquet (``.parquet`` / ``.geoparquet``).
        collection_id: overrides the id (default: the Collection's id, else the items'
            ``collection`` when they share one, else the file's stem).

    Returns:
        The collection, items in default order.

    Raises:
        CollectionLoadError: the file is missing, unreadable or not STAC.
    """
    path = Path(path)
    if not path.is_file():
        raise CollectionLoadError(f"collection file not found: {path}")
    # millions of new containers set off the cyclic collector over and over (it would
    # take 3/4 of the time); nothing made here is cyclic garbage
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(path, collection_id)
    finally:
        if enabled:
            gc.enable()


def _load(path: Path, collection_id: str | None) -> Collection:
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        source = _geoparquet_source(path)
    else:
        source = _json_source(path)
    doc = source.doc
    items: list[Item] = []
    pending: list[_Pending] = []
    ids: set[str] = set()
    from_items: set[Any] = set()
    layouts: dict[str, list[str]] = {}
    bases: dict[Path, Path] = {}
    sample: list[dict[str, Any]] = []
    n = 0
    try:
        for d, raw, folder in source.records:
            base = bases.get(folder)
            if base is None:
                base = bases[folder] = folder.resolve()
            try:
                p = _parse_item(d, base, layouts, raw)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                where = d.get("id") if isinstance(d, dict) else None
                raise CollectionLoadError(
                    f"item {n} ({where!r}) is not a valid STAC item: {type(exc).__name__}: {exc}"
                ) from exc
            if p.id in ids:
                raise CollectionLoadError(f"duplicate item id {p.id!r}")
            ids.add(p.id)
            name = d.get("collection")
            from_items.add(name if isinstance(name, str) else None)
            pending.append(p)
            if len(pending) == _CHUNK:  # footprints of a chunk at once, then free its dicts
                items.extend(_build_items(pending))
                pending = []
            if n < _PYSTAC_SAMPLE or n % _PYSTAC_SAMPLE == 0:
                sample.append(d)
            n += 1
        if n > _PYSTAC_SAMPLE:  # thin the sample out to ~256 spread over the collection
            step = max(1, len(sample) // _PYSTAC_SAMPLE)
            sample = sample[::step]
        for d in sample:
            _check_with_pystac(d)
        items.extend(_build_items(pending))
    except CollectionLoadError as exc:
        raise CollectionLoadError(f"{path.name}: {exc}") from exc.__cause__
    del pending, sample
    if collection_id is None:
        if doc.get("type") in ("Collection", "Catalog") and doc.get("id"):
            collection_id = doc["id"]
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
