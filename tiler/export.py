"""Exports: the mosaic of a bbox or a GeoJSON feature on a chosen grid."""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from geojson_pydantic import Feature
from morecantile.defaults import tms as default_tms
from rasterio.crs import CRS
from rasterio.features import bounds as feature_bounds
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from titiler.core.dependencies import (
    CoordCRSParams,
    DstCRSParams,
)

from tiler.cache import Rendered
from tiler.dependencies import Mosaic, mosaic_params
from tiler.errors import BadRequest, TooLarge
from tiler.render import Format, encode
from tiler.routes import make_backend, respond, stats_headers

router = APIRouter()


def _bbox(value: str) -> tuple[float, float, float, float]:
    try:
        nums = tuple(float(v) for v in value.split(","))
    except ValueError:
        nums = ()
    if len(nums) != 4 or not all(math.isfinite(v) for v in nums):
        raise BadRequest(f"bbox {value!r}: expected 4 finite numbers minx,miny,maxx,maxy")
    if nums[0] >= nums[2] or nums[1] >= nums[3]:
        raise BadRequest(f"bbox {value!r}: min must be less than max")
    return nums  # type: ignore[return-value]


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
    mosaic: Mosaic,
    bbox: tuple[float, float, float, float],
    width: int,
    height: int,
    fmt: Format,
    coord_crs: CRS | None,
    dst_crs: CRS | None,
    shape: dict[str, Any] | None = None,
) -> Response:
    chosen = mosaic.layer
    bounds_crs = coord_crs or CRS.from_epsg(4326)
    backend = make_backend(request, mosaic.collection, default_tms.get("WebMercatorQuad"))
    image, stats = backend.part(
        bbox,
        quality=chosen.quality,
        bands=chosen.bands,
        width=width,
        height=height,
        bounds_crs=bounds_crs,
        dst_crs=dst_crs or bounds_crs,
        search=mosaic.search,
        options=mosaic.options,
    )
    if shape is not None:
        geom = shape
        if (dst_crs or bounds_crs) != bounds_crs:
            geom = transform_geom(bounds_crs, dst_crs, shape)
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
    return respond(request, rendered, request.app.state.settings.cache_control)


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
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None,
    dst_crs: Annotated[CRS | None, Depends(DstCRSParams)] = None,
) -> Response:
    """The mosaic of ``bbox`` on a width x height grid in ``dst_crs``."""
    width, height = _size(size, request.app.state.settings.max_export_pixels)
    return _render(request, mosaic, _bbox(extent), width, height, format, coord_crs, dst_crs)


@router.post(
    "/collections/{collection_id}/feature",
    response_class=Response,
    summary="Export the mosaic inside a GeoJSON feature",
)
def feature_export(
    request: Request,
    feature: Annotated[Feature, Body(description="GeoJSON Feature (in coord_crs).")],
    mosaic: Annotated[Mosaic, Depends(mosaic_params)],
    width: Annotated[int, Query(ge=1, description="Output width in pixels.")] = 512,
    height: Annotated[int, Query(ge=1, description="Output height in pixels.")] = 512,
    format: Annotated[Format, Query(description="Output format.")] = Format.tif,
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None,
    dst_crs: Annotated[CRS | None, Depends(DstCRSParams)] = None,
) -> Response:
    """The mosaic of the feature's bounds, masked outside the feature."""
    width, height = _size(f"{width}x{height}", request.app.state.settings.max_export_pixels)
    if feature.geometry is None:
        raise BadRequest("feature has no geometry")
    shape = feature.geometry.model_dump(exclude_none=True)
    w, s, e, n = feature_bounds(shape)
    if w >= e or s >= n:
        raise BadRequest("feature geometry has an empty extent; use a polygon")
    return _render(
        request, mosaic, (w, s, e, n), width, height, format, coord_crs, dst_crs, shape=shape
    )
