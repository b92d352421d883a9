"""Collection files: STAC ItemCollection, NDJSON, linked STAC Collection, stac-geoparquet.

A collection file is a STAC ItemCollection (GeoJSON FeatureCollection of items), a JSON
array of items, newline-delimited items (NDJSON), a STAC Collection (or Catalog) whose
``item`` links point to item files, or a stac-geoparquet file (``.parquet`` /
``.geoparquet``, read with the ``stac-geoparquet`` package). Loaded into a
:class:`~tiler.catalog.memory.MemoryCatalog`.

Loading is built for large collections (the figures: benchmarks/README.md, "Figures behind
the catalogue's design"):

- JSON is parsed with ``orjson`` (the standard library for files that orjson rejects,
  e.g. with ``NaN`` literals).
- ``pystac.Item.from_dict`` parses a sample of the items (all of a collection of up to
  256, a few hundred spread over a larger one), as it costs several times the rest of
  the loading per item.
- An item keeps its STAC document as compact JSON bytes; :attr:`Item.stac` decodes it on
  use (a parsed dict costs several times the memory).
- Millions of new containers set off Python's cyclic garbage collector over and over (it
  would take most of the time); a server process loads with it paused
  (:func:`tiler.app.serve_app`), which is the caller's choice, not this module's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tiler.catalog.assets import is_remote, resolve
from tiler.catalog.collection_doc import described
from tiler.catalog.items import Pending, build_items, check_with_pystac, parse_item
from tiler.catalog.memory import MemoryCatalog
from tiler.catalog.models import Item, dumps, dumps_lenient, loads
from tiler.errors import CollectionLoadError

logger = logging.getLogger(__name__)

_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".geojsonl", ".geojsons", ".geojsonseq")
_PARQUET_SUFFIXES = (".parquet", ".geoparquet")
_PYSTAC_SAMPLE = 256
_CHUNK = 4096


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
            yield loads(line), line, base
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
        if not isinstance(href, str) or is_remote(href):
            raise CollectionLoadError(
                f"item link {href!r} is not a local file (remote item links are not fetched)"
            )
        item_path = Path(resolve(href, path.parent))
        if not item_path.is_file():
            raise CollectionLoadError(f"linked item file not found: {item_path}")
        data = _read_bytes(item_path)
        try:
            item = loads(data)
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
    would be scattered over all of its memory and pin it after loading.
    """
    raws = []
    for i in range(len(dicts)):
        raws.append(dumps(dicts[i]) if strict else dumps_lenient(dicts[i]))
        dicts[i] = None
    dicts.clear()
    for i in range(len(raws)):
        raw = raws[i]
        raws[i] = b""
        yield loads(raw), raw, base


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
        return isinstance(loads(data[first.start() : end]), dict)
    except ValueError:
        return False


def _json_source(path: Path) -> _Source:
    data = _read_bytes(path)
    base = path.parent
    if path.suffix.lower() in _NDJSON_SUFFIXES or _looks_ndjson(data):
        return _Source(_ndjson(path, data), {})
    strict = True
    try:
        doc = orjson.loads(data)
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
        return _Source([(doc, None if strict else dumps_lenient(doc), base)], {})
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
    except (pa.ArrowException, OSError) as exc:
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
            info = loads(raw_meta)
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
                raws = [dumps(_strip_nulls(d)) for d in stac_table_to_items(table)]
                del table, batch
                for i in range(len(raws)):
                    raw = raws[i]
                    raws[i] = b""
                    yield loads(raw), raw, path.parent
        # what pyarrow and stac-geoparquet raise for tables that are not STAC items
        except (pa.ArrowException, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CollectionLoadError(f"not stac-geoparquet: {exc}") from exc

    return _Source(records(), doc)


def item_documents(path: Path | str) -> Iterator[tuple[dict[str, Any], Path]]:
    """The item documents of a collection file, each with the folder its hrefs are relative to.

    Read as :func:`load_collection` reads them, without checks (load the file first to
    check it).
    """
    path = Path(path)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        source = _geoparquet_source(path)
    else:
        source = _json_source(path)
    for d, _, folder in source.records:
        if isinstance(d, dict):
            yield d, folder


def load_collection(path: Path | str, collection_id: str | None = None) -> MemoryCatalog:
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
    return _load(path, collection_id)


def _load(path: Path, collection_id: str | None) -> MemoryCatalog:
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        source = _geoparquet_source(path)
    else:
        source = _json_source(path)
    doc = source.doc
    items: list[Item] = []
    pending: list[Pending] = []
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
                p = parse_item(d, base, layouts, raw)
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
                items.extend(build_items(pending))
                pending = []
            if n < _PYSTAC_SAMPLE or n % _PYSTAC_SAMPLE == 0:
                sample.append(d)
            n += 1
        if n > _PYSTAC_SAMPLE:  # thin the sample out to ~256 spread over the collection
            step = max(1, len(sample) // _PYSTAC_SAMPLE)
            sample = sample[::step]
        for d in sample:
            check_with_pystac(d)
        items.extend(build_items(pending))
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
    return MemoryCatalog(id=str(collection_id), items=items, **described(doc), source=path)


def load_collections(paths: Sequence[Path | str]) -> dict[str, MemoryCatalog]:
    """Load several collection files into a mapping by id (ids must be unique)."""
    out: dict[str, MemoryCatalog] = {}
    for p in paths:
        col = load_collection(p)
        if col.id in out:
            raise CollectionLoadError(f"two collection files have the id {col.id!r}")
        out[col.id] = col
    return out
