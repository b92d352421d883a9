"""Routes: exports, the mosaic of a bbox or a GeoJSON feature on a chosen grid."""

from __future__ import annotations

from typing import Annotated, Any

import numpy
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from geojson_pydantic import Feature
from geojson_pydantic.geometries import Geometry
from rasterio.crs import CRS
from rasterio.features import bounds as feature_bounds
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rio_tiler.constants import WGS84_CRS
from titiler.core.dependencies import CoordCRSParams, DstCRSParams

from tiler.api.deps import Mosaic, get_engine, get_settings, mosaic_params
from tiler.api.responses import Rendered, respond, stats_headers
from tiler.catalog.filters import parse_bbox
from tiler.engine.grids import PartGrid
from tiler.engine.service import Engine
from tiler.errors import BadRequest, TooLarge
from tiler.render import Format, encode
from tiler.settings import Settings

router = APIRouter(tags=["Exports"])


def _size(value: str, limit: int) -> tuple[int, int]:
    try:
        w_s, h_s = value.lower().split("x")
        width, height = int(w_s), int(h_s)
    except ValueError:
        raise BadRequest(f"size {value!r}: expected {{width}}x{{height}}, e.g. 512x512") from None
    if width < 1 or height < 1:
        raise BadRequest(f"size {value!r}: width and height must be >= 1")
    if width * height > limit:
        raise TooLarge(
            f"export of {width}x{height} = {width * height} px exceeds the limit of {limit} px"
        )
    return width, height


def _render(
    request: Request,
    engine: Engine,
    settings: Settings,
    mosaic: Mosaic,
    grid: PartGrid,
    fmt: Format,
    shape: dict[str, Any] | None = None,
) -> Response:
    chosen = mosaic.layer
    image, stats = engine.mosaic(
        mosaic.catalog, mosaic.search, grid, chosen.quality, chosen.bands, mosaic.options
    )
    if shape is not None:
        geom = shape
        if grid.dst_crs != grid.bounds_crs:
            geom = transform_geom(grid.bounds_crs, grid.dst_crs, shape)
        outside = rasterize(
            [geom],
            out_shape=(image.height, image.width),
            transform=image.transform,
            all_touched=True,
            default_value=0,
            fill=1,
            dtype="uint8",
        ).astype(bool)
        image.array.mask = numpy.ma.getmaskarray(image.array) | outside[None]
    content, media_type = encode(image, fmt, chosen.vis)
    rendered = Rendered(content, media_type, stats_headers(stats))
    return respond(request, rendered, settings.cache_control)


def _grid(
    bbox: tuple[float, float, float, float],
    width: int,
    height: int,
    coord_crs: CRS | None,
    dst_crs: CRS | None,
) -> PartGrid:
    bounds_crs = coord_crs or WGS84_CRS
    return PartGrid(bbox, bounds_crs, dst_crs or bounds_crs, width, height)


@router.get(
    "/collections/{collection_id}/bbox/{extent}/{size}.{format}",
    response_class=Response,
    summary="Export the mosaic of a bbox",
)
def bbox_export(
    request: Request,
    extent: Annotated[str, Path(description="minx,miny,maxx,maxy in coord_crs.")],
    size: Annotated[str, Path(description="{width}x{height} in pixels.")],
    format: Annotated[Format, Path(description="Output format.")],
    mosaic: Annotated[Mosaic, Depends(mosaic_params)],
    settings: Annotated[Settings, Depends(get_settings)],
    engine: Annotated[Engine, Depends(get_engine)],
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None,
    dst_crs: Annotated[CRS | None, Depends(DstCRSParams)] = None,
) -> Response:
    """The mosaic of ``bbox`` on a width x height grid in ``dst_crs``."""
    width, height = _size(size, settings.max_export_pixels)
    bbox = parse_bbox(extent, lonlat=False)
    if bbox is None:
        raise BadRequest("bbox is empty: expected minx,miny,maxx,maxy")
    grid = _grid(bbox, width, height, coord_crs, dst_crs)
    return _render(request, engine, settings, mosaic, grid, format)


@router.post(
    "/collections/{collection_id}/feature",
    response_class=Response,
    summary="Export the mosaic inside a GeoJSON feature",
)
def feature_export(
    request: Request,
    feature: Annotated[
        Feature[Geometry, dict[str, Any]], Body(description="GeoJSON Feature (in coord_crs).")
    ],
    mosaic: Annotated[Mosaic, Depends(mosaic_params)],
    settings: Annotated[Settings, Depends(get_settings)],
    engine: Annotated[Engine, Depends(get_engine)],
    width: Annotated[int, Query(ge=1, description="Output width in pixels.")] = 512,
    height: Annotated[int, Query(ge=1, description="Output height in pixels.")] = 512,
    format: Annotated[Format, Query(description="Output format.")] = Format.tif,
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None,
    dst_crs: Annotated[CRS | None, Depends(DstCRSParams)] = None,
) -> Response:
    """The mosaic of the feature's bounds, masked outside the feature."""
    width, height = _size(f"{width}x{height}", settings.max_export_pixels)
    if feature.geometry is None:
        raise BadRequest("feature has no geometry")
    shape = feature.geometry.model_dump(exclude_none=True)
    w, s, e, n = feature_bounds(shape)
    if w >= e or s >= n:
        raise BadRequest("feature geometry has an empty extent; use a polygon")
    grid = _grid((w, s, e, n), width, height, coord_crs, dst_crs)
    return _render(request, engine, settings, mosaic, grid, format, shape=shape)
