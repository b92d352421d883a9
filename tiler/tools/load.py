"""``tiler load``: collection files into a PgSTAC database, through pypgstac's loader.

The files are read and checked as ``tiler serve`` reads them; the collection document
gets the extent, ``item_assets`` (the union of the items' assets), ``summaries`` and the
file's ``renders``; relative asset hrefs become absolute (a database item stands on its
own); the band names are kept in order (``qualitymosaic:bands``); numeric properties become
number queryables, so that CQL2 comparisons on them are
numeric in PgSTAC too. Loading the same file again updates the collection (upsert).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods
from pypgstac.migrate import Migrate

from tiler.catalog.assets import is_url
from tiler.catalog.loaders import item_documents, load_collection
from tiler.catalog.memory import MemoryCatalog
from tiler.catalog.models import summarise
from tiler.catalog.pgstac import hide_password

logger = logging.getLogger(__name__)


def migrate(dsn: str) -> str:
    """Create or upgrade the PgSTAC schema of a database; the version it is at."""
    return str(Migrate(PgstacDB(dsn=dsn)).run_migration())


def collection_document(catalog: MemoryCatalog) -> dict[str, Any]:
    """The STAC Collection of a loaded collection file."""
    item_assets: dict[str, Any] = {}
    for item in catalog.items:
        for key, asset in (item.stac.get("assets") or {}).items():
            if key not in item_assets and isinstance(asset, dict):
                item_assets[key] = {k: v for k, v in asset.items() if k != "href"}
    w, s, e, n = catalog.bounds
    start, end = catalog.interval
    doc: dict[str, Any] = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": catalog.id,
        "description": catalog.description or f"{catalog.id} (loaded by tiler load)",
        "license": "other",
        "extent": {"spatial": {"bbox": [[w, s, e, n]]}, "temporal": {"interval": [[start, end]]}},
        "links": [],
        "item_assets": item_assets,
        "summaries": summarise(catalog.items),
        # the band order (a database's JSON objects do not keep their key order)
        "qualitymosaic:bands": list(catalog.bands),
    }
    if catalog.title:
        doc["title"] = catalog.title
    if catalog.renders:
        doc["renders"] = catalog.renders
    return doc


def _absolute(doc: dict[str, Any], base: Path, collection_id: str) -> dict[str, Any]:
    assets = doc.get("assets") or {}
    for asset in assets.values():
        href = asset.get("href") if isinstance(asset, dict) else None
        if isinstance(href, str) and not is_url(href) and not Path(href).is_absolute():
            asset["href"] = str((base.resolve() / href).resolve())
    return {**doc, "collection": collection_id}


def _number_queryables(db: PgstacDB, collection_id: str, summaries: dict[str, Any]) -> None:
    names = [k for k, v in summaries.items() if isinstance(v, dict) and "minimum" in v]
    conn = db.connect()
    for name in names:
        with conn.cursor() as cur:
            cur.execute(
                "DELETE FROM pgstac.queryables WHERE name = %s AND collection_ids = %s",
                (name, [collection_id]),
            )
            try:
                cur.execute(
                    "INSERT INTO pgstac.queryables (name, collection_ids, definition, "
                    "property_wrapper) VALUES (%s, %s, %s, 'to_float')",
                    (name, [collection_id], Jsonb({"type": "number"})),
                )
            except psycopg.errors.UniqueViolation:  # a global queryable of that name exists
                logger.info("queryable %s exists for every collection: kept", name)
    conn.commit()


def load(
    path: Path,
    dsn: str,
    catalog: MemoryCatalog | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[str, int]:
    """Create or update a collection in PgSTAC from a collection file.

    Args:
        path: a file ``tiler serve`` accepts.
        dsn: the database URL.
        catalog: the file already loaded (default: load it here); its id is the
            collection's.
        progress: called with the number of items loaded since the last call.

    Returns:
        (collection id, items loaded).
    """
    catalog = catalog or load_collection(path)
    doc = collection_document(catalog)
    db = PgstacDB(dsn=dsn)
    loader = Loader(db=db)
    logger.info("loading %s (%d items) into %s", catalog.id, len(catalog.items), hide_password(dsn))
    loader.load_collections(iter([doc]), insert_mode=Methods.upsert)

    def items() -> Iterator[dict[str, Any]]:
        for d, base in item_documents(path):
            yield _absolute(d, base, catalog.id)
            if progress is not None:
                progress(1)

    loader.load_items(items(), insert_mode=Methods.upsert)
    _number_queryables(db, catalog.id, doc["summaries"])
    db.close()
    return catalog.id, len(catalog.items)
