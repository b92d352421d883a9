"""Doors for map clients: TileJSON, WMTS capabilities, OGC tileset metadata."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from morecantile import TileMatrixSet
from morecantile.defaults import tms as default_tms
from titiler.core.factory import TMSFactory
from titiler.core.models.mapbox import TileJSON
from titiler.core.resources.responses import XMLResponse
from titiler.core.utils import tms_limits
from titiler.mosaic.extensions.wmts import DEFAULT_TEMPLATES

from tiler.api.baked import get_baked, layer_for
from tiler.api.deps import (
    ASCII_DIGITS,
    TMS_IDS,
    Mosaic,
    get_catalog,
    get_engine,
    get_min_zoom,
    get_tms,
    mosaic_params,
    public_base,
)
from tiler.api.responses import registered_media_type
from tiler.catalog.baked import BakedLayers
from tiler.catalog.base import Catalog
from tiler.catalog.coverage import MinZoom
from tiler.engine.credentials import Credentials
from tiler.engine.io import native_maxzoom
from tiler.errors import BadRequest
from tiler.render import Format

router = APIRouter(tags=["Maps"])

#: the highest zoom of any tile matrix set served (each one's own range is checked too)
MAX_ZOOM = max(default_tms.get(t).maxzoom for t in TMS_IDS)

#: query keys of these routes that must not be forwarded to tile URLs
_OWN_KEYS = {
    "tile_format",
    "tile_scale",
    "minzoom",
    "maxzoom",
    "tilesize",
    "service",
    "request",
    "version",
    "acceptversions",
    "sections",
    "updatesequence",
    "acceptformats",
}


class PublicTMSFactory(TMSFactory):
    """titiler's ``/tileMatrixSets`` routes, their links based on :func:`public_base`."""

    def url_for(self, request: Request, name: str, **path_params: Any) -> str:
        """The absolute URL of route ``name`` (TILER_PUBLIC_URL when set, not the Host)."""
        return f"{public_base(request)}{self.router.url_path_for(name, **path_params)}"


@dataclass(frozen=True)
class _Addressed:
    """What the WMTS template reads of its request: the URL it was asked at."""

    url: str


class _Unreadable(Exception):
    """The file that sets the zoom range cannot be read (not cached: it may come back)."""


@functools.lru_cache(maxsize=256)
def _native_zoom(href: str, tms_id: str, credentials: Credentials) -> int:
    zoom = native_maxzoom(href, default_tms.get(tms_id), credentials.sign(href).url)
    if zoom is None:
        raise _Unreadable(href)
    return zoom


def zoom_range(catalog: Catalog, tms: TileMatrixSet, credentials: Credentials) -> tuple[int, int]:
    """Zooms a map should request: native resolution of a sample item and 6 levels out.

    The item's file is opened as reads open it (``credentials``: signed where its host
    needs it). Falls back to the matrix set's range while that item cannot be read (logged).
    """
    item = catalog.sample()
    if item is None or not item.bands:
        return tms.minzoom, tms.maxzoom
    first = next(iter(item.bands.values()))
    try:
        maxzoom = min(_native_zoom(first.href, tms.id, credentials), tms.maxzoom)
    except _Unreadable:
        maxzoom = tms.maxzoom
    return max(tms.minzoom, maxzoom - 6), maxzoom


def chosen_zooms(
    tms: TileMatrixSet, default: tuple[int, int], minzoom: int | None, maxzoom: int | None
) -> tuple[int, int]:
    """The TileJSON zoom range: the request's overrides, else ``default``.

    Raises:
        BadRequest: an override outside ``tms``'s zooms, or ``minzoom`` > ``maxzoom``.
    """
    allowed = f"allowed in {tms.id}: {tms.minzoom}..{tms.maxzoom}"
    for name, value in (("minzoom", minzoom), ("maxzoom", maxzoom)):
        if value is not None and not tms.minzoom <= value <= tms.maxzoom:
            raise BadRequest(f"{name}={value} is outside the zooms {allowed}")
    if minzoom is not None and maxzoom is not None and minzoom > maxzoom:
        raise BadRequest(f"minzoom={minzoom} is above maxzoom={maxzoom}: minzoom <= maxzoom")
    lo, hi = default
    if minzoom is not None:
        lo, hi = minzoom, max(hi, minzoom)
    if maxzoom is not None:
        lo, hi = min(lo, maxzoom), maxzoom
    return lo, hi


def _zoom_override(which: str, rule: str) -> Any:
    """The ``Query`` of TileJSON's ``minzoom`` or ``maxzoom`` override."""
    return Query(
        ge=0,
        le=MAX_ZOOM,
        description=f"Override the {which} zoom: within the tile matrix set's zooms "
        f"(WebMercatorQuad: 0..24) and not {rule}.",
    )


def validated_query(request: Request, mosaic: Annotated[Mosaic, Depends(mosaic_params)]) -> str:
    """The tile query string, after checking it as a tile request would (400 if bad)."""
    return urlencode(
        [(k, v) for k, v in request.query_params.multi_items() if k.lower() not in _OWN_KEYS]
    )


@dataclass(frozen=True)
class MapDoor:
    """What every map-client document is about: a collection, a matrix set, the tile query."""

    catalog: Catalog
    tms: TileMatrixSet
    query: str


def map_door(
    catalog: Annotated[Catalog, Depends(get_catalog)],
    tms: Annotated[TileMatrixSet, Depends(get_tms)],
    query: Annotated[str, Depends(validated_query)],
) -> MapDoor:
    """The collection, matrix set and checked tile query of a map-client document."""
    return MapDoor(catalog, tms, query)


def tile_url(
    request: Request, collection_id: str, tms: TileMatrixSet, fmt: Format, scale: int
) -> str:
    """The tile URL template with literal ``{z}/{x}/{y}``."""
    base = public_base(request)
    suffix = f"@{scale}x" if scale != 1 else ""
    return (
        f"{base}/collections/{collection_id}/tiles/{tms.id}/{{z}}/{{x}}/{{y}}{suffix}.{fmt.value}"
    )


@router.get(
    "/collections/{collection_id}/{tileMatrixSetId}/tilejson.json",
    response_model=TileJSON,
    response_model_exclude_none=True,
    summary="TileJSON 3.0 for web maps",
)
def tilejson(
    request: Request,
    door: Annotated[MapDoor, Depends(map_door)],
    mosaic: Annotated[Mosaic, Depends(mosaic_params)],
    min_zoom: Annotated[MinZoom, Depends(get_min_zoom)],
    baked: Annotated[BakedLayers, Depends(get_baked)],
    tile_format: Annotated[Format, Query(description="Tile format.")] = Format.png,
    tile_scale: Annotated[
        int, Query(ge=1, le=4, description="Tile scale (2 = @2x)."), ASCII_DIGITS
    ] = 1,
    minzoom: Annotated[int | None, _zoom_override("minimum", "above maxzoom"), ASCII_DIGITS] = None,
    maxzoom: Annotated[int | None, _zoom_override("maximum", "below minzoom"), ASCII_DIGITS] = None,
) -> dict[str, Any]:
    """TileJSON whose tile URL carries the request's quality, bands and filters.

    ``minzoom`` is where tiles stay under the items limit (estimated over the collection's
    centre with the request's filters), so a map does not ask for tiles it would refuse;
    for a request a baked layer answers (its collection, quality, filters and bands), the
    matrix set's lowest zoom, and the layer's bounds.
    """
    catalog, tms, query = door.catalog, door.tms, door.query
    chosen_zooms(tms, (tms.minzoom, tms.maxzoom), minzoom, maxzoom)  # 400 before any work
    info = catalog.info()
    lo, hi = zoom_range(catalog, tms, get_engine(request).credentials)
    layer = layer_for(baked, mosaic)
    if layer is None:
        lo = min(hi, max(lo, min_zoom(catalog, tms, mosaic.search, hi)))
        w, s, e, n = info.bounds
    else:
        lo = tms.minzoom
        w, s, e, n = layer.bounds
    lo, hi = chosen_zooms(tms, (lo, hi), minzoom, maxzoom)
    url = tile_url(request, catalog.id, tms, tile_format, tile_scale)
    return {
        "tilejson": "3.0.0",
        "name": info.title or info.id,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{url}?{query}" if query else url],
        "minzoom": lo,
        "maxzoom": hi,
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, lo],
    }


@router.get(
    "/collections/{collection_id}/{tileMatrixSetId}/WMTSCapabilities.xml",
    response_class=XMLResponse,
    summary="OGC WMTS capabilities (RESTful) for QGIS and GDAL",
)
def wmts(
    request: Request,
    door: Annotated[MapDoor, Depends(map_door)],
    tile_format: Annotated[Format, Query(description="Tile format.")] = Format.png,
) -> Any:
    """One layer for the request's parameters, and one per preset of the collection."""
    catalog, tms, query = door.catalog, door.tms, door.query
    info = catalog.info()
    lo, hi = zoom_range(catalog, tms, get_engine(request).credentials)
    limits = tms_limits(tms, info.bounds, zooms=(lo, hi))
    url = tile_url(request, catalog.id, tms, tile_format, 1)
    url = url.replace("{z}", "{TileMatrix}").replace("{x}", "{TileCol}")
    url = url.replace("{y}", "{TileRow}")
    # the request's own layer is named after the collection; presets get a suffix
    renders = [(info.id, query)]
    renders += [(f"{info.id}_{name}", urlencode({"preset": name})) for name in info.renders]
    layers = [
        {
            "title": name,
            "identifier": name,
            "tms_identifier": tms.id,
            "tms_limits": limits,
            "tiles_url": url,
            "query_string": qs,
            "bbox_crs_type": "WGS84BoundingBox",
            "bbox_crs_uri": "urn:ogc:def:crs:OGC:2:84",
            "bbox": info.bounds,
        }
        for name, qs in renders
    ]
    # matrices past the native zoom are left out: GDAL reads at the finest matrix listed
    matrices = tms.tileMatrices[: hi - tms.minzoom + 1]
    matrix_sets = [{"id": tms.id, "crs": tms.crs.srs, "matrices": matrices}]
    # the template writes request.url as the GetCapabilities address: the public one
    here = f"{public_base(request)}/collections/{catalog.id}/{tms.id}/WMTSCapabilities.xml"
    if request.url.query:
        here += f"?{request.url.query}"
    body = DEFAULT_TEMPLATES.get_template("wmts.xml").render(
        request=_Addressed(url=here),
        layers=layers,
        tileMatrixSets=matrix_sets,
        media_type=registered_media_type(tile_format.image_type.mediatype),
    )
    return XMLResponse(body, media_type="application/xml")


@router.get("/collections/{collection_id}/tiles", summary="OGC tilesets of a collection")
def tilesets(request: Request, catalog: Annotated[Catalog, Depends(get_catalog)]) -> dict[str, Any]:
    """The tile matrix sets a collection can be tiled in."""
    info = catalog.info()
    base = public_base(request)
    return {
        "tilesets": [
            {
                "title": f"{info.id} tiled in {tms_id}",
                "dataType": "map",
                "crs": get_tms(tms_id).crs.srs,
                "links": [
                    {
                        "rel": "self",
                        "href": f"{base}/collections/{info.id}/tiles/{tms_id}",
                    },
                    {
                        "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                        "href": f"{base}/tileMatrixSets/{tms_id}",
                    },
                ],
            }
            for tms_id in TMS_IDS
        ]
    }


@router.get(
    "/collections/{collection_id}/tiles/{tileMatrixSetId}",
    summary="OGC tileset metadata",
)
def tileset(request: Request, door: Annotated[MapDoor, Depends(map_door)]) -> dict[str, Any]:
    """Tileset metadata (OGC API - Tiles) with the tile template and matrix limits."""
    catalog, tms, query = door.catalog, door.tms, door.query
    info = catalog.info()
    lo, hi = zoom_range(catalog, tms, get_engine(request).credentials)
    base = public_base(request)
    url = tile_url(request, catalog.id, tms, Format.png, 1)
    url = url.replace("{z}", "{tileMatrix}").replace("{x}", "{tileCol}")
    url = url.replace("{y}", "{tileRow}")
    return {
        "title": f"{info.id} tiled in {tms.id}",
        "dataType": "map",
        "crs": tms.crs.srs,
        "boundingBox": {
            "lowerLeft": list(info.bounds[:2]),
            "upperRight": list(info.bounds[2:]),
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        },
        "tileMatrixSetURI": f"{base}/tileMatrixSets/{tms.id}",
        "tileMatrixSetLimits": tms_limits(tms, info.bounds, zooms=(lo, hi)),
        "links": [
            {
                "rel": "item",
                "type": "image/png",
                "templated": True,
                "href": f"{url}?{query}" if query else url,
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                "href": f"{base}/tileMatrixSets/{tms.id}",
            },
        ],
    }
