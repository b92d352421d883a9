"""The PgSTAC catalogue: collections that stay in their PostgreSQL database.

Per request, the filters are pushed down to PgSTAC (``stac_search_to_where`` builds the
WHERE clause from a STAC search with the tile as ``intersects``, the datetime, ids and the
CQL2 filter as CQL2-JSON), every matching item is fetched (never PgSTAC's coverage
shortcuts: a quality mosaic needs all of them; more than the limit is a 400, never a
partial mosaic), and the rows are then selected and ordered by the in-memory catalogue's
own code, so the semantics (footprint, datetime, ids, CQL2, collection order and so the
tie rule) are exactly those of a collection file. Searches are kept per process for
``search_cache_ttl`` seconds.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydraters
import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from shapely.geometry.base import BaseGeometry

from tiler.catalog.assets import asset_bands
from tiler.catalog.base import Catalog, ItemPage
from tiler.catalog.filters import Search
from tiler.catalog.models import Item, loads
from tiler.catalog.remote import RemoteCatalog
from tiler.catalog.stac_params import sortby_keys, stac_search_body
from tiler.errors import CatalogUnavailable, CollectionLoadError, InvalidFilter, TooManyItems

logger = logging.getLogger(__name__)

#: the columns of an item row, hydrated in Python rather than by PgSTAC's content_hydrate
#: (benchmarks/README.md, the PgSTAC catalogue: F1)
_ROW = sql.SQL("id, collection, ST_AsGeoJSON(geometry, 20), content::text")


@dataclass(frozen=True)
class _BaseItems:
    """A collection's base items: the current one, and PgSTAC 0.10's earlier ones by id."""

    current: dict[str, Any]
    tagged: dict[int, dict[str, Any]]

    def of(self, tag: Any) -> dict[str, Any]:
        """The base item an item tagged ``tag`` was dehydrated against.

        As PgSTAC 0.10's ``content_hydrate``: its tagged one; without a tag the collection's
        first; else (0.9, or a tag naming no base item) the current one.
        """
        if tag is None:
            return self.tagged[min(self.tagged)] if self.tagged else self.current
        if isinstance(tag, int | str) and str(tag).strip().isdigit():
            return self.tagged.get(int(str(tag).strip()), self.current)
        return self.current


def is_dsn(source: str | Path) -> bool:
    """A PostgreSQL connection URL (``postgresql://`` or ``postgres://``)."""
    return isinstance(source, str) and source.startswith(("postgresql:", "postgres:"))


def hide_password(dsn: str) -> str:
    """The DSN without its password, for logs and messages.

    (Not :func:`tiler.errors.redact`, which takes paths and URLs out of messages.)
    """
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable DSN)"
    parts.pop("password", None)
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


class PgstacDatabase:
    """A connection pool to one PgSTAC database (reconnects after an outage).

    Args:
        dsn: the connection URL (libpq fills what it leaves out from ``PG*`` variables).
        min_size: connections kept open.
        max_size: most connections.
        timeout: seconds to wait for a connection; also each statement's timeout.
    """

    def __init__(
        self, dsn: str, min_size: int = 1, max_size: int = 10, timeout: float = 10
    ) -> None:
        self.name = hide_password(dsn)
        self.timeout = timeout
        # no parallel plans: for a tile's few hundred rows their start-up costs more than
        # the scan (benchmarks/README.md, the PgSTAC catalogue: F2)
        options = (
            f"-c search_path=pgstac,public -c statement_timeout={int(timeout * 1000)} "
            "-c max_parallel_workers_per_gather=0"
        )
        self._pool = psycopg_pool.ConnectionPool(
            make_conninfo(dsn, options=options, connect_timeout=max(1, int(timeout))),
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            timeout=timeout,
            name=self.name,
        )
        self._closed = False
        self._lock = threading.Lock()

    def open(self) -> None:
        """Connect (raises :class:`CollectionLoadError` saying where, without the password)."""
        try:
            self._pool.open(wait=True, timeout=self.timeout)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise CollectionLoadError(
                f"cannot connect to the PgSTAC database {self.name} within {self.timeout:g} s"
            ) from exc

    def close(self) -> None:
        """Close the pool (once; later calls do nothing)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pool.close()

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor on a pooled connection; an unreachable database is a 503."""
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as exc:
            raise CatalogUnavailable(
                f"the PgSTAC database {self.name} is unavailable: {type(exc).__name__}"
            ) from exc

    def rows(self, query: sql.Composable | str, params: Any = None) -> list[tuple[Any, ...]]:
        """All rows of a query."""
        with self.cursor() as cur:
            cur.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall()

    def ping(self) -> str | None:
        """None when the database answers, else what is wrong."""
        try:
            self.rows("SELECT 1")
        except CatalogUnavailable as exc:
            return str(exc)
        return None

    def collections(self) -> list[dict[str, Any]]:
        """Every collection document of the database, by id."""
        return [row[0] for row in self.rows("SELECT content FROM pgstac.collections ORDER BY id")]


class PgstacCatalog(RemoteCatalog):
    """One collection of a PgSTAC database.

    Args:
        db: the database (shared by its collections).
        doc: the STAC Collection document.
        cache_ttl: seconds a search's selection is kept (0: not kept).
        cache_size: items kept in the search cache, over all its searches.
    """

    def __init__(
        self,
        db: PgstacDatabase,
        doc: dict[str, Any],
        cache_ttl: float = 300,
        cache_size: int = 5000,
    ) -> None:
        super().__init__(str(doc["id"]), cache_ttl, cache_size)
        self.db = db
        self.doc = doc
        self._base: _BaseItems | None = None

    # -- description -----------------------------------------------------------------
    def _document(self) -> dict[str, Any]:
        """The collection document, as the database held it when the server started."""
        return self.doc

    def _count(self) -> int:
        """``count(*)`` of the collection's items."""
        rows = self.db.rows("SELECT count(*) FROM pgstac.items WHERE collection = %s", (self.id,))
        return int(rows[0][0])

    def _bands(self, doc: dict[str, Any]) -> list[str]:
        """The first item's bands, then those of ``item_assets`` keys it lacks.

        (The first item's files tell the band names of multi-band assets that declare none;
        ``item_assets`` adds the assets other items have.)
        """
        item_assets = doc.get("item_assets") or {}
        sample = self.sample()
        if sample is None:
            return list(asset_bands(item_assets))
        names = list(sample.bands)
        keys = set(sample.stac.get("assets") or {})
        extra = {k: v for k, v in item_assets.items() if k not in keys}
        names += [b for b in asset_bands(extra) if b not in names]
        return names

    def sample(self) -> Item | None:
        """The first item in default order (datetime, then id)."""
        rows = self.db.rows(
            sql.SQL(
                "SELECT {} FROM pgstac.items WHERE collection = %s ORDER BY datetime, id LIMIT 1"
            ).format(_ROW),
            (self.id,),
        )
        items = self._items(rows)
        return items[0] if items else None

    def health(self) -> dict[str, Any]:
        """Whether the database answers."""
        problem = self.db.ping()
        return {"status": "ok"} if problem is None else {"status": "unavailable", "detail": problem}

    def close(self) -> None:
        """Close the database pool (shared: closed once)."""
        self.db.close()

    # -- selection -------------------------------------------------------------------
    def _where(self, search: Search, geometry: BaseGeometry | None) -> str:
        """PgSTAC's WHERE clause for the search (``stac_search_to_where``)."""
        body = stac_search_body(self.id, search, geometry)
        del body["sortby"]  # the clause selects; the order is the caller's
        try:
            rows = self.db.rows("SELECT stac_search_to_where(%s::jsonb)", (json.dumps(body),))
        except psycopg.errors.DataError as exc:  # what PgSTAC rejects in the search
            raise InvalidFilter(f"PgSTAC cannot run this search: {exc}") from exc
        return str(rows[0][0])

    def _base_items(self) -> _BaseItems:
        """The collection's base items, as PgSTAC's ``content_hydrate`` picks them."""
        if self._base is None:
            rows = self.db.rows(
                "SELECT base_item FROM pgstac.collections WHERE id = %s", (self.id,)
            )
            current = dict(rows[0][0] or {}) if rows else {}
            tagged: dict[int, dict[str, Any]] = {}
            # PgSTAC 0.10 keeps every base item the collection had (pgstac.base_items) and
            # tags each item with the one it was dehydrated against; 0.9 has one
            if self.db.rows("SELECT to_regclass('pgstac.base_items') IS NOT NULL")[0][0]:
                tagged = {
                    int(i): dict(b)
                    for i, b in self.db.rows(
                        "SELECT id, base_item FROM pgstac.base_items WHERE collection = %s",
                        (self.id,),
                    )
                }
            self._base = _BaseItems(current, tagged)
        return self._base

    def _items(self, rows: list[tuple[Any, ...]]) -> list[Item]:
        """Items from ``_ROW`` rows: hydrated as PgSTAC's ``content_hydrate`` does."""
        bases = self._base_items()
        docs = []
        for item_id, collection, geometry, content in rows:
            body = loads(content)
            base = bases.of(body.pop("pgstac:base_item", None))
            # pypgstac's own (Rust) hydrater, in place of the database's content_hydrate
            docs.append(
                hydraters.hydrate(
                    base,
                    {
                        "id": item_id,
                        "geometry": loads(geometry),
                        "collection": collection,
                        "type": "Feature",
                        **body,
                    },
                )
            )
        return self._parse(docs)

    def _candidates(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None
    ) -> list[Item]:
        """Every row of the pushed-down search (more than ``limit``: TooManyItems)."""
        where = self._where(search, geometry)
        # no query parameters: the WHERE text may hold '%' (LIKE patterns), quoted by PgSTAC
        query = sql.SQL("SELECT {} FROM pgstac.items WHERE {} {}").format(
            _ROW,
            sql.SQL(where),
            sql.SQL("LIMIT {}").format(sql.Literal(limit + 1))
            if limit is not None
            else sql.SQL(""),
        )
        try:
            rows = self.db.rows(query)
        except psycopg.errors.DataError as exc:
            raise InvalidFilter(f"PgSTAC cannot run this filter: {exc}") from exc
        if limit is not None and len(rows) > limit:
            raise TooManyItems(None, limit)
        return self._items(rows)

    def page(self, search: Search, limit: int, offset: int) -> ItemPage:
        """A page of the selection, ordered by PgSTAC (sortby, then id; default datetime)."""
        where = sql.SQL(self._where(search, None))
        keys = sortby_keys(search.sortby)
        order = self.db.rows("SELECT sort_sqlorderby(%s::jsonb)", (json.dumps({"sortby": keys}),))
        count = self.db.rows(sql.SQL("SELECT count(*) FROM pgstac.items WHERE {}").format(where))
        rows = self.db.rows(
            sql.SQL("SELECT {} FROM pgstac.items WHERE {} ORDER BY {} LIMIT {} OFFSET {}").format(
                _ROW, where, sql.SQL(order[0][0]), sql.Literal(limit), sql.Literal(offset)
            )
        )
        return ItemPage(self._items(rows), int(count[0][0]), offset)


def open_pgstac(
    dsn: str,
    collections: list[str] | None = None,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 10,
    cache_ttl: float = 300,
    cache_size: int = 5000,
) -> dict[str, Catalog]:
    """The collections of a PgSTAC database as catalogues sharing one pool.

    Args:
        dsn: the database URL.
        collections: ids to serve (None or empty: every collection).
        min_size: connections kept open.
        max_size: most connections.
        timeout: seconds to wait for a connection; also the statement timeout.
        cache_ttl: seconds a search's selection is kept (0: not kept).
        cache_size: items kept in each collection's search cache, over all its searches.

    Raises:
        CollectionLoadError: the database cannot be reached, or a named collection is not
            in it.
    """
    db = PgstacDatabase(dsn, min_size=min_size, max_size=max_size, timeout=timeout)
    db.open()
    try:
        docs = {str(d["id"]): d for d in db.collections()}
    except CatalogUnavailable as exc:
        db.close()
        raise CollectionLoadError(str(exc)) from exc
    wanted = list(collections or docs)
    missing = [c for c in wanted if c not in docs]
    if missing:
        db.close()
        raise CollectionLoadError(
            f"collection {', '.join(map(repr, missing))} is not in the PgSTAC database "
            f"{db.name}; it has: {', '.join(sorted(docs)) or '(none)'}"
        )
    logger.info("serving %d collections of %s", len(wanted), db.name)
    return {c: PgstacCatalog(db, docs[c], cache_ttl, cache_size) for c in wanted}
