"""What a server is told to serve, opened as catalogues: collection files and databases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tiler.catalog.base import Catalog
from tiler.catalog.loaders import load_collection
from tiler.catalog.pgstac import is_dsn, open_pgstac
from tiler.errors import CollectionLoadError
from tiler.settings import Settings


def open_catalogs(sources: Sequence[str | Path], settings: Settings) -> dict[str, Catalog]:
    """Catalogues by id from collection files and PgSTAC database URLs (ids must be unique).

    Raises:
        CollectionLoadError: a source cannot be read, or two collections share an id.
    """
    out: dict[str, Catalog] = {}

    def add(catalog: Catalog) -> None:
        if catalog.id in out:
            catalog.close()
            raise CollectionLoadError(f"two collection files have the id {catalog.id!r}")
        out[catalog.id] = catalog

    try:
        for source in sources:
            if is_dsn(source):
                for catalog in open_pgstac(
                    str(source),
                    settings.pgstac_collections,
                    min_size=settings.db_min_conn_size,
                    max_size=settings.db_max_conn_size,
                    timeout=settings.db_timeout,
                    cache_ttl=settings.search_cache_ttl,
                    cache_size=settings.search_cache_size,
                ).values():
                    add(catalog)
            else:
                add(load_collection(source))
    except CollectionLoadError:
        for catalog in out.values():
            catalog.close()
        raise
    return out
