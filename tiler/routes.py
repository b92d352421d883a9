"""HTTP routes: collections and tiles (SPEC section 4)."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from morecantile import TileMatrixSet
from morecantile.defaults import tms as default_tms

from tiler.backend import CollectionBackend
from tiler.cache import Rendered, ResponseCache, not_modified
from tiler.collection import Collection
from tiler.dependencies import Mosaic, SearchParams, get_collection, mosaic_params
from tiler.errors import BadRequest, TileNotFound
from tiler.reader import DERIVED, MosaicStats
from tiler.render import Format, encode
from tiler.search import select

logger = logging.getLogger(__name__)

router = APIRouter()

TMS_IDS = tuple(default_tms.list())


def get_tms(
    tileMatrixSetId: Annotated[  # noqa: N803
        str,
        Path(description=f"TileMatrixSet identifier, one of: {', '.join(TMS_IDS)}."),
    ],
) -> TileMatrixSet:
    """The TileMatrixSet named in the path (404 listing the known ones otherwise)."""
    if tileMatrixSetId not in TMS_IDS:
        raise TileNotFound(
            f"unknown tileMatrixSetId {tileMatrixSetId!r}; supported: {', '.join(TMS_IDS)}"
        )
    return default_tms.get(tileMatrixSetId)


def make_backend(request: Request, collection: Collection, tms: TileMatrixSet) -> CollectionBackend:
    """A backend for one request, sharing the app's read pool and settings."""
    settings = request.app.state.settings
    return CollectionBackend(
        collection,
        tms=tms,
        pool=request.app.state.pool,
        threads=settings.read_threads,
        max_items=settings.max_items_per_tile,
        timeout=settings.item_timeout,
    )


def summaries(collection: Collection, limit: int = 20) -> dict[str, Any]:
    """STAC-style summaries of item properties: ranges of numbers, sets of few strings."""
    values: dict[str, list[Any]] = {}
    for item in collection.items:
        for key, value in item.properties.items():
            if key != "datetime" and isinstance(value, int | float | str) and value is not True:
                values.setdefault(key, []).append(value)
    out: dict[str, Any] = {}
    for key, vals in values.items():
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            out[key] = {"minimum": min(vals), "maximum": max(vals)}
        elif len(distinct := sorted({str(v) for v in vals})) <= limit:
            out[key] = distinct
    return out


def _cached_summaries(request: Request, collection: Collection) -> dict[str, Any]:
    cache: dict[str, dict[str, Any]] = request.app.state.summaries
    if collection.id not in cache:
        cache[collection.id] = summaries(collection)
    return cache[collection.id]


def collection_summary(collection: Collection, request: Request) -> dict[str, Any]:
    """The JSON description of a collection."""
    w, s, e, n = collection.bounds
    start, end = collection.interval
    base = str(request.base_url).rstrip("/")
    tiles = f"{base}/collections/{collection.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png"
    return {
        "id": collection.id,
        "title": collection.title or collection.id,
        "description": collection.description,
        "item_count": len(collection.items),
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, 11],
        "minzoom": 0,
        "maxzoom": 22,
        "datetime": [start, end],
        "extent": {
            "spatial": {"bbox": [[w, s, e, n]]},
            "temporal": {"interval": [[start, end]]},
        },
        "bands": collection.bands,
        "summaries": _cached_summaries(request, collection),
        "output_bands": [*collection.bands, *DERIVED],
        "default": collection.default_render,
        "renders": collection.renders,
        "links": [
            {"rel": "self", "href": f"{base}/collections/{collection.id}"},
            {"rel": "tiles", "href": tiles},
        ],
    }


@router.get("/collections", summary="The collections served")
def list_collections(request: Request) -> dict[str, Any]:
    """List the served collections."""
    cols = request.app.state.collections.values()
    return {"collections": [collection_summary(c, request) for c in cols]}


@router.get("/collections/{collection_id}", summary="One collection")
def describe_collection(
    request: Request, collection: Annotated[Collection, Depends(get_collection)]
) -> dict[str, Any]:
    """Bounds, item count, date range, band names, default visualisation, presets."""
    return collection_summary(collection, request)


@router.get("/collections/{collection_id}/items", summary="Items a request selects")
def list_items(
    request: Request,
    collection: Annotated[Collection, Depends(get_collection)],
    search: Annotated[SearchParams, Depends()],
    limit: Annotated[int, Query(ge=1, le=1000, description="Items per page.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> dict[str, Any]:
    """The STAC items the filters select, in collection order (the mosaic's tie order)."""
    items = select(collection, search.search(), None)
    page = items[offset : offset + limit]
    links = []
    if offset + limit < len(items):
        params = dict(request.query_params)
        params["offset"] = str(offset + limit)
        links.append({"rel": "next", "href": str(request.url.replace_query_params(**params))})
    return {
        "type": "FeatureCollection",
        "features": [_listed(it.stac, collection.id, offset + i) for i, it in enumerate(page)],
        "numberMatched": len(items),
        "numberReturned": len(page),
        "links": links,
    }


def _listed(stac: dict[str, Any], collection_id: str, index: int) -> dict[str, Any]:
    """An item as the items route lists it: with its position in collection order."""
    stac["collection"] = collection_id
    stac["properties"] = {**stac.get("properties", {}), "qualitymosaic:index": index}
    return stac


def stats_headers(stats: MosaicStats) -> dict[str, str]:
    """Observability headers of a mosaic response."""
    headers = {
        "X-Items-Considered": str(stats.considered),
        "X-Items-Read": str(stats.read),
        "X-Items-Used": str(len(stats.used)),
        "X-Early-Exit": "1" if stats.exited_early else "0",
        "Server-Timing": ", ".join(f"{k};dur={v:.2f}" for k, v in stats.timings.items()),
    }
    if stats.skipped:
        headers["X-Items-Skipped"] = "; ".join(
            f"{k}: {v}".replace("\n", " ")[:300] for k, v in stats.skipped.items()
        )[:4000]
    return headers


_TILE_NAME = re.compile(r"^(?P<y>-?\d+)(?:@(?P<scale>\d+)x)?(?:\.(?P<format>[A-Za-z0-9]+))?$")


def parse_tile_name(name: str) -> tuple[int, int, Format]:
    """Split ``{y}[@{scale}x][.{format}]`` into (y, scale, format)."""
    m = _TILE_NAME.match(name)
    if m is None:
        raise BadRequest(
            f"tile row {name!r} is not of the form {{y}}[@{{scale}}x][.{{format}}], "
            "e.g. 1520, 1520.png, 1520@2x.webp"
        )
    scale = int(m["scale"] or 1)
    if not 1 <= scale <= 4:
        raise BadRequest(f"scale @{scale}x is not supported: use @1x to @4x")
    fmt = (m["format"] or "png").lower()
    try:
        return int(m["y"]), scale, Format(fmt)
    except ValueError:
        raise BadRequest(
            f"unsupported format {fmt!r}; supported: {', '.join(f.value for f in Format)}"
        ) from None


@router.get(
    "/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}",
    response_class=Response,
    summary="Quality-mosaic tile",
    responses={
        200: {
            "content": {
                "image/png": {},
                "image/jpeg": {},
                "image/webp": {},
                "image/tiff; application=geotiff": {},
                "application/x-binary": {},
            }
        }
    },
)
def tile(
    request: Request,
    z: Annotated[int, Path(description="Zoom level (TileMatrix identifier).")],
    x: Annotated[int, Path(description="Column.")],
    y: Annotated[
        str,
        Path(description="Row, optionally with scale and format: 1520, 1520@2x.png."),
    ],
    tms: Annotated[TileMatrixSet, Depends(get_tms)],
    mosaic: Annotated[Mosaic, Depends(mosaic_params)],
    tilesize: Annotated[int | None, Query(gt=0, description="Tile size in pixels.")] = None,
) -> Response:
    """A quality-mosaic tile."""
    settings = request.app.state.settings
    row, scale, format = parse_tile_name(y)
    size = (tilesize or 256) * scale
    if size > settings.max_tile_size:
        raise BadRequest(
            f"tile size {size} px exceeds the limit of {settings.max_tile_size} px "
            "(tilesize x scale)"
        )
    if z < tms.minzoom or z > tms.maxzoom:
        raise TileNotFound(f"zoom {z} is outside {tms.id}: allowed {tms.minzoom}..{tms.maxzoom}")
    matrix = tms.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= row < matrix.matrixHeight):
        raise TileNotFound(
            f"tile {z}/{x}/{row} is outside {tms.id}: at zoom {z}, x must be in "
            f"0..{matrix.matrixWidth - 1} and y in 0..{matrix.matrixHeight - 1}"
        )
    collection, chosen = mosaic.collection, mosaic.layer
    cache: ResponseCache = request.app.state.cache
    key = ResponseCache.key(request)
    hit = cache.get(key)
    if hit is not None:
        return respond(request, hit, settings.cache_control, cached=True)
    backend = make_backend(request, collection, tms)
    image, stats = backend.tile(
        x,
        row,
        z,
        quality=chosen.quality,
        bands=chosen.bands,
        search=mosaic.search,
        tilesize=size,
        options=mosaic.options,
    )
    content, media_type = encode(image, format, chosen.vis)
    rendered = Rendered(content, media_type, stats_headers(stats))
    if not stats.skipped:  # a tile missing a faulty item is not kept
        cache.put(key, rendered)
    logger.info(
        "tile %s %s/%s/%s considered=%d read=%d used=%d skipped=%d timings=%s",
        collection.id,
        z,
        x,
        row,
        stats.considered,
        stats.read,
        len(stats.used),
        len(stats.skipped),
        stats.timings,
    )
    return respond(request, rendered, settings.cache_control)


def respond(
    request: Request, rendered: Rendered, cache_control: str, cached: bool = False
) -> Response:
    """The response for a rendered body: 304 when the client has it, else the body."""
    etag = rendered.etag
    headers = {
        **rendered.headers,
        "ETag": etag,
        "Cache-Control": cache_control,
        "X-Cache": "hit" if cached else "miss",
    }
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(rendered.content, media_type=rendered.media_type, headers=headers)
