"""Route: the quality-mosaic tile (SPEC section 4)."""

from __future__ import annotations

import logging
import re
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from morecantile import TileMatrixSet

from tiler.api.admission import OVERLOAD_RESPONSES
from tiler.api.baked import SOURCE, baked_image, get_baked, refusal
from tiler.api.deps import (
    Mosaic,
    get_engine,
    get_min_zoom,
    get_settings,
    get_tms,
    mosaic_params,
)
from tiler.api.requests_log import add_timing
from tiler.api.responses import Rendered, ResponseCache, respond, stats_headers
from tiler.catalog.baked import BakedLayers
from tiler.catalog.coverage import MinZoom
from tiler.engine.grids import TileGrid
from tiler.engine.service import Engine
from tiler.errors import BadRequest, TileNotFound, TooManyItems, quoted
from tiler.render import Format, check_encodable, encode
from tiler.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["Tiles"])

#: matched whole (``fullmatch``: ``$`` would match before a trailing newline), ASCII digits only
_TILE_NAME = re.compile(
    r"(?P<y>-?[0-9]{1,10})(?:@(?P<scale>[0-9]{1,2})x)?(?:\.(?P<format>[A-Za-z0-9]{1,8}))?"
)


#: a zoom or column as the path gives it: ASCII digits, nothing around them
_INDEX = re.compile(r"-?[0-9]{1,10}")


def parse_tile_name(name: str) -> tuple[int, int, Format]:
    """Split ``{y}[@{scale}x][.{format}]`` into (y, scale, format)."""
    m = _TILE_NAME.fullmatch(name)
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


def tile_grid(tms: TileMatrixSet, z: int, x: int, y: int, size: int) -> TileGrid:
    """The grid of tile z/x/y (404 naming the allowed range when it is outside ``tms``)."""
    if z < tms.minzoom or z > tms.maxzoom:
        raise TileNotFound(f"zoom {z} is outside {tms.id}: allowed {tms.minzoom}..{tms.maxzoom}")
    matrix = tms.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
        raise TileNotFound(
            f"tile {z}/{x}/{y} is outside {tms.id}: at zoom {z}, x must be in "
            f"0..{matrix.matrixWidth - 1} and y in 0..{matrix.matrixHeight - 1}"
        )
    return TileGrid(tms, x, y, z, size)


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
        },
        **OVERLOAD_RESPONSES,
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
    settings: Annotated[Settings, Depends(get_settings)],
    engine: Annotated[Engine, Depends(get_engine)],
    min_zoom: Annotated[MinZoom, Depends(get_min_zoom)],
    baked: Annotated[BakedLayers, Depends(get_baked)],
    tilesize: Annotated[int | None, Query(gt=0, description="Tile size in pixels.")] = None,
) -> Response:
    """A quality-mosaic tile."""
    for name in ("z", "x"):  # pydantic's int() takes "14\n" and " 14 "
        raw = str(request.path_params.get(name, ""))
        if not _INDEX.fullmatch(raw):
            raise BadRequest(f"tile {name} {quoted(raw, 20)} must be a whole number, e.g. 14")
    row, scale, format = parse_tile_name(y)
    size = (tilesize or 256) * scale
    if size > settings.max_tile_size:
        raise BadRequest(
            f"tile size {size} px exceeds the limit of {settings.max_tile_size} px "
            "(tilesize x scale)"
        )
    chosen = mosaic.layer
    check_encodable(
        format, len(chosen.bands), size, size, bool(chosen.vis.palette or chosen.vis.colormap)
    )
    grid = tile_grid(tms, z, x, row, size)
    cache: ResponseCache = request.app.state.cache
    key = ResponseCache.key(request)
    hit = cache.get(key)
    if hit is not None:
        return respond(request, hit, settings.cache_control, cached=True)
    try:
        image, stats = engine.mosaic(
            mosaic.catalog, mosaic.search, grid, chosen.quality, chosen.bands, mosaic.options
        )
    except TooManyItems as exc:  # the baked layer of exactly this request, else where it works
        found = baked_image(baked, mosaic, grid, engine)
        if found is None:
            zoom = min_zoom(mosaic.catalog, tms, mosaic.search, tms.maxzoom)
            raise refusal(exc, max(zoom, z + 1), baked, mosaic) from exc
        image, layer = found
        headers = {SOURCE: "baked", "X-Baked-Layer": layer.name}
        logger.info("tile %s %s/%s/%s baked=%s", mosaic.catalog.id, z, x, row, layer.name)
    else:
        headers = {**stats_headers(stats), SOURCE: "live"}
        logger.info(
            "tile %s %s/%s/%s considered=%d read=%d used=%d skipped=%d timings=%s",
            mosaic.catalog.id,
            z,
            x,
            row,
            stats.considered,
            stats.read,
            len(stats.used),
            len(stats.skipped),
            stats.timings,
        )
    started = time.perf_counter()
    content, media_type = encode(image, format, chosen.vis)
    add_timing(headers, "render", time.perf_counter() - started)
    rendered = Rendered(content, media_type, headers)
    if rendered.complete:  # a tile missing a faulty item is not kept
        cache.put(key, rendered)
    return respond(request, rendered, settings.cache_control)
