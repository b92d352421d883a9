"""Routes: the served collections and the items a request selects."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request

from tiler.api.baked import get_baked
from tiler.api.deps import SearchParams, get_catalog, public_base
from tiler.catalog.base import Catalog
from tiler.engine.outputs import DERIVED
from tiler.errors import CatalogUnavailable, UpstreamError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["Collections"])


def collection_summary(catalog: Catalog, request: Request) -> dict[str, Any]:
    """The JSON description of a collection."""
    info = catalog.info()
    w, s, e, n = info.bounds
    start, end = info.interval
    base = public_base(request)
    tiles = f"{base}/collections/{info.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png"
    return {
        "id": info.id,
        "title": info.title or info.id,
        "description": info.description,
        "item_count": info.item_count,
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, 11],
        "minzoom": 0,
        "maxzoom": 22,
        "datetime": [start, end],
        "extent": {
            "spatial": {"bbox": [[w, s, e, n]]},
            "temporal": {"interval": [[start, end]]},
        },
        "bands": info.bands,
        # common names usable as band names: each with the bands declaring it (one: an
        # alias of that band; more: ambiguous, a request must name one of them)
        "aliases": info.aliases,
        "summaries": info.summaries,
        "output_bands": [*info.bands, *DERIVED],
        "default": info.default_render,
        "renders": info.renders,
        # exports served at every zoom for requests of exactly their quality and filters
        "baked": {layer.name: layer.describe() for layer in get_baked(request).of(info.id)},
        "links": [
            {"rel": "self", "href": f"{base}/collections/{info.id}"},
            {"rel": "tiles", "href": tiles},
        ],
    }


@router.get("/collections", summary="The collections served")
def list_collections(request: Request) -> dict[str, Any]:
    """List the served collections (one that cannot be reached says so)."""
    catalogs: dict[str, Catalog] = request.app.state.catalogs
    out = []
    for catalog in catalogs.values():
        try:
            out.append(collection_summary(catalog, request))
        except (CatalogUnavailable, UpstreamError) as exc:
            logger.warning("collection %s unavailable: %s", catalog.id, exc)
            out.append(
                {"id": catalog.id, "title": catalog.id, "available": False, "detail": str(exc)}
            )
    return {"collections": out}


@router.get("/collections/{collection_id}", summary="One collection")
def describe_collection(
    request: Request, catalog: Annotated[Catalog, Depends(get_catalog)]
) -> dict[str, Any]:
    """Bounds, item count, date range, band names, default visualisation, presets."""
    return collection_summary(catalog, request)


@router.get("/collections/{collection_id}/items", summary="Items a request selects")
def list_items(
    request: Request,
    catalog: Annotated[Catalog, Depends(get_catalog)],
    search: Annotated[SearchParams, Depends()],
    limit: Annotated[int, Query(ge=1, le=1000, description="Items per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")] = 0,
) -> dict[str, Any]:
    """The STAC items the filters select, in collection order (the mosaic's tie order)."""
    page = catalog.page(search.search(), limit=limit, offset=offset)
    links = []
    more = len(page.items) == limit if page.matched is None else offset + limit < page.matched
    if more:
        params = dict(request.query_params)
        params["offset"] = str(offset + limit)
        href = f"{public_base(request)}/collections/{catalog.id}/items?{urlencode(params)}"
        links.append({"rel": "next", "href": href})
    features = []
    for i, item in enumerate(page.items):
        stac = item.stac
        stac["collection"] = catalog.id
        stac["properties"] = {**stac.get("properties", {}), "qualitymosaic:index": offset + i}
        features.append(stac)
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": page.matched,
        "numberReturned": len(page.items),
        "links": links,
    }
