"""The STAC API catalogue: a collection behind a STAC API (``https://.../collections/{id}``).

Per request, an item search through pystac-client: the tile as ``intersects``, the
datetime, the ids, the CQL2 filter (as CQL2-JSON) and the sortby, each only where the
API's conformance classes say it can; every page is followed (more items than the limit is
a 400, never a partial mosaic; paging that never ends is a 502). The fetched items are
then selected and ordered by the in-memory catalogue's own code, so a filter or an order
the API cannot apply is applied here, and the semantics are exactly those of a file.

Remote failures answer 502 (errors, malformed answers) or 504 (timeouts) within
``timeout`` seconds per request to the API; an API that is down when the server starts
only makes its collection unavailable (503) until it answers again.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from shapely.geometry.base import BaseGeometry

from tiler.catalog.assets import asset_bands
from tiler.catalog.base import ItemPage
from tiler.catalog.filters import Search, referenced
from tiler.catalog.models import Item
from tiler.catalog.remote import RemoteCatalog
from tiler.catalog.stac_params import stac_search_body
from tiler.errors import (
    CatalogUnavailable,
    CollectionLoadError,
    InvalidFilter,
    TooManyItems,
    UpstreamError,
    UpstreamTimeout,
)

logger = logging.getLogger(__name__)

#: items per page asked of the API when a search has no limit (else the limit plus one, up to
#: MAX_PAGE_SIZE: one page answers a tile, and paging, which some APIs get wrong with equal
#: sort keys, is rare)
PAGE_SIZE = 250
MAX_PAGE_SIZE = 2000
#: a catalogue that cannot filter server-side fetches at most this many times the limit
CLIENT_FILTER_FACTOR = 10
#: items a listing fetches to filter and order them here (an API without sort or filter)
CLIENT_PAGE_LIMIT = 10_000
#: pages one search follows at most when it has no limit
MAX_PAGES = 1000
#: item properties the mosaic reads (besides those a filter or sortby names)
_PROPERTIES = ("datetime", "start_datetime", "end_datetime")


def is_stac_api(source: object) -> bool:
    """An ``http(s)://`` URL of a STAC API collection."""
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def split_collection_url(url: str) -> tuple[str, str]:
    """(API root, collection id) of ``https://host/stac/v1/collections/{id}``.

    Raises:
        ValueError: not a collection URL.
    """
    path = urlsplit(url).path.rstrip("/")
    head, sep, cid = path.rpartition("/collections/")
    if not sep or not cid or "/" in cid:
        raise ValueError(f"{url!r} is not a STAC API collection URL (.../collections/{{id}})")
    root = url[: url.rstrip("/").rindex("/collections/")]
    return root, cid


def _upstream(what: str, exc: Exception) -> Exception:
    """A 504 for a timeout, a 400 for a search the API rejects, else a 502 (never headers)."""
    # pystac-client re-raises transport errors as APIError (the original is the context)
    if isinstance(exc, requests.Timeout) or isinstance(exc.__context__, requests.Timeout):
        return UpstreamTimeout(f"the STAC API did not answer {what} in time")
    if isinstance(exc, APIError) and getattr(exc, "status_code", None) in (400, 422):
        return InvalidFilter(f"the STAC API rejected {what}: {str(exc)[:300]}")
    cause = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return UpstreamError(f"the STAC API failed {what}: {cause}")


_REMOTE_FAULTS = (APIError, requests.RequestException, ValueError, KeyError, TypeError)


class StacApiCatalog(RemoteCatalog):
    """One collection of a STAC API.

    Args:
        url: the collection's URL.
        headers: request headers for the API (e.g. a token); never logged.
        timeout: seconds per request to the API.
        cache_ttl: seconds a search's selection is kept (0: not kept).
        cache_size: items kept in the search cache, over all its searches.
        max_pages: pages one search may follow (None: enough for the limit, plus one).
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        cache_ttl: float = 300.0,
        cache_size: int = 5000,
        max_pages: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.root, collection_id = split_collection_url(self.url)
        super().__init__(collection_id, cache_ttl, cache_size)
        self._headers = dict(headers or {})
        self.timeout = timeout
        self.max_pages = max_pages
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._caps: dict[str, bool] = {}
        self._doc: dict[str, Any] | None = None

    # -- the API ---------------------------------------------------------------------
    def _open(self) -> Client:
        with self._lock:
            if self._client is None:
                try:
                    client = Client.open(self.root, headers=self._headers, timeout=self.timeout)
                except _REMOTE_FAULTS as exc:
                    raise CatalogUnavailable(
                        f"the STAC API of collection {self.id!r} is unavailable: "
                        f"{_upstream('its landing page', exc)}"
                    ) from exc
                # what the API can do, from its conformance classes in any version
                # (pystac-client's own checks know only some versions of them)
                classes = [str(c) for c in client.get_conforms_to()]
                self._caps = {
                    "sort": any(c.endswith("item-search#sort") for c in classes),
                    "fields": any(c.endswith("item-search#fields") for c in classes),
                    "filter": any(c.endswith("item-search#filter") for c in classes)
                    and any(c.endswith("cql2/1.0/conf/cql2-json") for c in classes),
                }
                for name, able in self._caps.items():
                    if able:
                        client.add_conforms_to(name.upper())
                self._client = client
            return self._client

    def _can(self, what: str) -> bool:
        """Whether the API can ``what`` (sort, filter, fields) server-side."""
        self._open()
        return self._caps[what]

    def _document(self) -> dict[str, Any]:
        """The API's collection document (fetched once; again after :meth:`health`)."""
        if self._doc is None:
            try:
                answer = requests.get(self.url, headers=self._headers, timeout=self.timeout)
                answer.raise_for_status()
                doc = answer.json()
            except _REMOTE_FAULTS as exc:
                raise CatalogUnavailable(
                    f"collection {self.id!r} is unavailable: {_upstream('its collection', exc)}"
                ) from exc
            if not isinstance(doc, dict) or doc.get("id") != self.id:
                raise UpstreamError(f"{self.url} is not the STAC collection {self.id!r}")
            self._doc = doc
        return self._doc

    def _pages(self, **params: Any) -> Iterator[dict[str, Any]]:
        client = self._open()
        try:
            search = client.search(**{"collections": [self.id], **params})
            yield from search.pages_as_dicts()
        except _REMOTE_FAULTS as exc:
            raise _upstream("the item search", exc) from exc

    # -- description -----------------------------------------------------------------
    def _bands(self, doc: dict[str, Any]) -> list[str]:
        """Those of ``item_assets``, else those of the first item the API lists."""
        bands = list(asset_bands(doc.get("item_assets") or {}))
        if not bands and (sample := self.sample()) is not None:
            bands = list(sample.bands)
        return bands

    def _count(self) -> int | None:
        for page in self._pages(limit=1, max_items=1):
            matched = page.get("numberMatched", (page.get("context") or {}).get("matched"))
            return int(matched) if isinstance(matched, int) else None
        return 0

    def sample(self) -> Item | None:
        """The first item the API lists."""
        for page in self._pages(limit=1, max_items=1):
            items = self._items(page.get("features") or [])
            return items[0] if items else None
        return None

    def health(self) -> dict[str, Any]:
        """Whether the API answers with the collection."""
        try:
            self._doc = None
            self._document()
        except (CatalogUnavailable, UpstreamError) as exc:
            return {"status": "unavailable", "detail": str(exc)}
        return {"status": "ok"}

    # -- selection -------------------------------------------------------------------
    def _items(self, docs: list[Any]) -> list[Item]:
        try:
            return self._parse(docs)
        except (CollectionLoadError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise UpstreamError(f"the STAC API answered an item that is not STAC: {exc}") from exc

    def _params(self, search: Search, geometry: BaseGeometry | None) -> tuple[dict[str, Any], bool]:
        """pystac-client search arguments, and whether the API applies the filter itself.

        The filter and the sortby are sent only where the API's conformance classes say
        it can apply them (a total order, id last, pages without repeats or gaps).
        """
        body = stac_search_body(self.id, search, geometry)
        # pystac-client's argument names: filter_lang for filter-lang
        params = {name.replace("-", "_"): value for name, value in body.items()}
        filtered = True
        if "filter" in params and not self._can("filter"):
            del params["filter"], params["filter_lang"]
            filtered = False
        if not self._can("sort"):
            del params["sortby"]
        if self._can("fields"):
            names = set(_PROPERTIES) | {k.field for k in search.sortby}
            wanted = referenced(search.filter) if search.filter is not None else frozenset()
            if wanted is not None:  # else: the filter reads paths, keep every property
                names |= set(wanted)
                include = ["type", "stac_version", "id", "collection", "geometry", "bbox"]
                include.append("assets")
                include += [f"properties.{n}" for n in sorted(names) if n not in ("id",)]
                params["fields"] = {"include": include, "exclude": []}
        return params, filtered

    def _candidates(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None
    ) -> list[Item]:
        """Every page of the API's search (more than the limit allows: TooManyItems).

        Without a filter applied by the API, up to :data:`CLIENT_FILTER_FACTOR` times the
        limit is fetched to be filtered here.
        """
        params, filtered = self._params(search, geometry)
        fetch = None if limit is None else (limit if filtered else limit * CLIENT_FILTER_FACTOR)
        docs: list[Any] = []
        seen: set[Any] = set()
        page_cap = self.max_pages or MAX_PAGES
        size = PAGE_SIZE if fetch is None else min(fetch + 1, MAX_PAGE_SIZE)
        for n, page in enumerate(self._pages(limit=size, **params), start=1):
            features = page.get("features")
            if not isinstance(features, list):
                raise UpstreamError("the STAC API answered a page without features")
            if n == 1 and fetch is not None and self.max_pages is None:
                # enough pages for the limit at the API's own page size, and two more
                page_cap = math.ceil((fetch + 1) / max(1, len(features))) + 2
            fresh = [f for f in features if not (isinstance(f, dict) and f.get("id") in seen)]
            if features and not fresh:  # a page of nothing new: the paging loops
                raise UpstreamError(
                    f"the STAC API's paging did not end: page {n} only repeats earlier items"
                )
            if len(fresh) < len(features):
                logger.warning(
                    "the STAC API repeated %d items across pages", len(features) - len(fresh)
                )
            seen.update(f.get("id") for f in fresh if isinstance(f, dict))
            docs.extend(fresh)
            if fetch is not None and len(docs) > fetch:
                raise TooManyItems(None, limit if limit is not None else fetch)
            if n >= page_cap:
                raise UpstreamError(
                    f"the STAC API's paging did not end after {n} pages ({len(docs)} items)"
                )
        return self._items(docs)

    def page(self, search: Search, limit: int, offset: int) -> ItemPage:
        """A page of the selection in collection order (sortby, then id; default datetime).

        An API that can sort and filter pages itself; for one that cannot, the whole
        selection (at most :data:`CLIENT_PAGE_LIMIT` items) is fetched, then filtered,
        ordered and sliced here.
        """
        params, filtered = self._params(search, None)
        params.pop("fields", None)
        if not (filtered and self._can("sort")):
            everything = self.search(search, None, limit=CLIENT_PAGE_LIMIT)
            return ItemPage(everything[offset : offset + limit], len(everything), offset)
        docs: list[Any] = []
        matched: int | None = None
        for page in self._pages(limit=min(PAGE_SIZE, offset + limit), **params):
            if matched is None:
                found = page.get("numberMatched", (page.get("context") or {}).get("matched"))
                matched = found if isinstance(found, int) else None
            docs.extend(page.get("features") or [])
            if len(docs) >= offset + limit:
                break
        return ItemPage(self._items(docs[offset : offset + limit]), matched, offset)
