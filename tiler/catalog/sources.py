"""What a server is told to serve, opened as catalogues: collection files and databases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tiler.catalog.base import Catalog
from tiler.catalog.loaders import load_collection
from tiler.catalog.pgstac import is_dsn, open_pgstac
from tiler.catalog.stacapi import StacApiCatalog, is_stac_api, split_collection_url
from tiler.errors import CollectionLoadError
from tiler.settings import Settings


def open_catalogs(sources: Sequence[str | Path], settings: Settings) -> dict[str, Catalog]:
    """Catalogues by id from collection files, PgSTAC URLs and STAC API collection URLs.

    A STAC API is not asked anything here: one that is down only makes its collection
    unavailable until it answers. Ids must be unique.

    Raises:
        CollectionLoadError: a source cannot be read, or two collections share an id.
    """
    out: dict[str, Catalog] = {}

    def add(catalog: Catalog) -> None:
        if catalog.id in out:
            catalog.close()
            raise CollectionLoadError(f"two sources serve a collection with the id {catalog.id!r}")
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
            elif is_stac_api(source):
                try:
                    split_collection_url(str(source))
                except ValueError as exc:
                    raise CollectionLoadError(str(exc)) from exc
                headers = {k: v.get_secret_value() for k, v in settings.stac_api_headers.items()}
                add(
                    StacApiCatalog(
                        str(source),
                        headers=headers,
                        timeout=settings.stac_api_timeout,
                        cache_ttl=settings.search_cache_ttl,
                        cache_size=settings.search_cache_size,
                    )
                )
            else:
                add(load_collection(source))
    except CollectionLoadError:
        for catalog in out.values():
            catalog.close()
        raise
    return out
