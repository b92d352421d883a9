"""``tiler load``: collection files into a PgSTAC database; ``tiler pgstac migrate``.

The files are read and checked as ``tiler serve`` reads them; the collection document
gets the extent, ``item_assets`` (the union of the items' assets), ``summaries`` and the
file's ``renders``; relative asset hrefs become absolute (a database item stands on its
own); the band names are kept in order (``qualitymosaic:bands``); numeric properties become
number queryables, so that CQL2 comparisons on them are
numeric in PgSTAC too. Loading the same file again updates the collection (upsert).

PgSTAC versions: pypgstac's loader refuses a database whose PgSTAC minor version is not its
own (pypgstac 0.10 refuses a 0.9 database and pypgstac 0.9 a 0.10 one), and its SQL differs
between them (0.10 tags items with the base item they were dehydrated against). A database
of pypgstac's own minor version is loaded with pypgstac's loader (COPY, fastest); any other
supported version (0.9 and later) through the SQL functions every one of them has,
``pgstac.upsert_collection`` and ``pgstac.upsert_items``, so that the database dehydrates the
items itself, by its own rules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pypgstac
from psycopg.types.json import Jsonb
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods
from pypgstac.migrate import Migrate, MigrationPath, migrations_dir

from tiler.catalog.assets import is_remote
from tiler.catalog.loaders import item_documents, load_collection
from tiler.catalog.memory import MemoryCatalog
from tiler.catalog.models import summarise
from tiler.catalog.pgstac import hide_password
from tiler.errors import CollectionLoadError

logger = logging.getLogger(__name__)

#: the oldest PgSTAC that ``tiler load`` writes into (and ``tiler serve`` is tested with)
OLDEST = (0, 9)
#: items per ``pgstac.upsert_items`` call when the database is not pypgstac's version
SQL_BATCH = 500


class MigrationError(RuntimeError):
    """A PgSTAC migration that cannot be made (the message says why and what to do)."""


def version_tuple(version: str) -> tuple[int, int, int] | None:
    """``"0.10.0"`` as ``(0, 10, 0)``; None for what is not a release (``unreleased``)."""
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def installable_versions() -> list[str]:
    """The PgSTAC versions the installed pypgstac can install or migrate to, oldest first."""
    found = []
    for path in Path(migrations_dir).glob("pgstac.*.sql"):
        name = path.name.removeprefix("pgstac.").removesuffix(".sql")
        parsed = version_tuple(name)
        if "-" not in name and parsed is not None:
            found.append((parsed, name))
    return [name for _, name in sorted(found)]


def database_version(dsn: str) -> str | None:
    """The PgSTAC version of a database; None when PgSTAC is not installed in it."""
    db = PgstacDB(dsn=dsn)
    try:
        return db.version
    finally:
        db.close()


def migrate(dsn: str, to_version: str | None = None) -> str:
    """Install or upgrade the PgSTAC schema of a database; the version it is at after.

    Args:
        dsn: the database URL.
        to_version: the PgSTAC version to install or upgrade to (default: the installed
            pypgstac's own, ``pypgstac.__version__``); one of :func:`installable_versions`.

    Raises:
        MigrationError: an unknown version, or a database newer than ``to_version``
            (PgSTAC has no downgrades).
    """
    target = to_version or str(pypgstac.__version__)
    known = installable_versions()
    if target not in known:
        newest: dict[tuple[int, int], str] = {}
        for name in known:
            parsed = version_tuple(name)
            if parsed is not None:
                newest[parsed[:2]] = name
        listed = ", ".join(sorted(newest.values(), key=lambda v: version_tuple(v) or (0, 0, 0)))
        raise MigrationError(
            f"pypgstac {pypgstac.__version__} cannot install PgSTAC {target}: it knows up to "
            f"{known[-1] if known else 'none'} (the newest of each minor version: {listed}); "
            "a newer PgSTAC needs a newer pypgstac (pip install -U pypgstac)"
        )
    db = PgstacDB(dsn=dsn)
    try:
        current = db.version
        if current is not None and current != target:
            try:
                MigrationPath(migrations_dir, current, target).migrations()
            except Exception as exc:  # pypgstac raises a bare Exception: no path
                old, new = version_tuple(current), version_tuple(target)
                why = (
                    "PgSTAC migrations only go forward"
                    if old is not None and new is not None and new < old
                    else f"pypgstac {pypgstac.__version__} has no migration path between them"
                )
                raise MigrationError(f"cannot migrate PgSTAC {current} to {target}: {why}") from exc
        return str(Migrate(db).run_migration(toversion=target))
    finally:
        db.close()


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
        if isinstance(href, str) and not is_remote(href) and not Path(href).is_absolute():
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

    def items() -> Iterator[dict[str, Any]]:
        for d, base in item_documents(path):
            yield _absolute(d, base, catalog.id)
            if progress is not None:
                progress(1)

    db = PgstacDB(dsn=dsn)
    try:
        version = db.version
        own = _same_minor(version, str(pypgstac.__version__))
        logger.info(
            "loading %s (%d items) into %s (PgSTAC %s, %s)",
            catalog.id,
            len(catalog.items),
            hide_password(dsn),
            version,
            "pypgstac's loader" if own else "pgstac.upsert_items",
        )
        if own:
            loader = Loader(db=db)
            loader.load_collections(iter([doc]), insert_mode=Methods.upsert)
            loader.load_items(items(), insert_mode=Methods.upsert)
        else:
            _load_sql(db, doc, items())
        _number_queryables(db, catalog.id, doc["summaries"])
    finally:
        db.close()
    return catalog.id, len(catalog.items)


def _same_minor(version: str | None, pypgstac_version: str) -> bool:
    """Whether pypgstac's loader takes a database of that version (else: the SQL path).

    Raises:
        CollectionLoadError: no PgSTAC in the database, or one older than :data:`OLDEST`.
    """
    if version is None:
        raise CollectionLoadError(
            "the database has no PgSTAC schema: install it with tiler pgstac migrate --dsn ..."
        )
    if version == "unreleased":  # a development database: pypgstac's loader takes it
        return True
    parsed, own = version_tuple(version), version_tuple(pypgstac_version)
    if parsed is None or parsed[:2] < OLDEST:
        raise CollectionLoadError(
            f"the database has PgSTAC {version}; tiler load writes into PgSTAC "
            f"{OLDEST[0]}.{OLDEST[1]} or later: upgrade it with tiler pgstac migrate --dsn ..."
        )
    return own is not None and parsed[:2] == own[:2]


def _load_sql(db: PgstacDB, collection: dict[str, Any], items: Iterator[dict[str, Any]]) -> None:
    """Upsert the collection, then the items in batches, through PgSTAC's SQL functions."""
    conn = db.connect()
    conn.execute("SELECT pgstac.upsert_collection(%s::jsonb)", (Jsonb(collection),))
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= SQL_BATCH:
            conn.execute("SELECT pgstac.upsert_items(%s::jsonb)", (Jsonb(batch),))
            batch = []
    if batch:
        conn.execute("SELECT pgstac.upsert_items(%s::jsonb)", (Jsonb(batch),))
