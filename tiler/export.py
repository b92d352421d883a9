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
    ColorMapParams,
    CoordCRSParams,
    DatasetParams,
    DstCRSParams,
    RenderingParams,
)

from tiler.collection import Collection
from tiler.dependencies import (
    LayerParams,
    SearchParams,
    VisParams,
    get_collection,
    read_options,
    resolve_layer,
)
from tiler.errors import BadRequest, TooLarge
from tiler.render import Format, encode
from tiler.routes import make_backend, stats_headers

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
    collection: Collection,
    bbox: tuple[float, float, float, float],
    width: int,
    height: int,
    fmt: Format,
    coord_crs: CRS | None,
    dst_crs: CRS | None,
    search: SearchParams,
    layer: LayerParams,
    vis: VisParams,
    rendering: RenderingParams,
    dataset: DatasetParams,
    colormap: Any,
    shape: dict[str, Any] | None = None,
) -> Response:
    chosen = resolve_layer(
        collection, layer, vis, rendering.rescale, rendering.color_formula, colormap
    )
    bounds_crs = coord_crs or CRS.from_epsg(4326)
    backend = make_backend(request, collection, default_tms.get("WebMercatorQuad"))
    image, stats = backend.part(
        bbox,
        quality=chosen.quality,
        bands=chosen.bands,
        width=width,
        height=height,
        bounds_crs=bounds_crs,
        dst_crs=dst_crs or bounds_crs,
        search=search.search(),
        options=read_options(dataset),
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
    return Response(content, media_type=media_type, headers=stats_headers(stats))


@router.get(
    "/collections/{collection_id}/bbox/{extent}/{size}.{format}",
    response_class=Response,
    summary="Export the mosaic of a bbox",
)
def bbox_export(
    request: Request,
    collection: Annotated[Collection, Depends(get_collection)],
    extent: Annotated[str, Path(description="minx,miny,maxx,maxy in coord_crs.")],
    size: Annotated[str, Path(description="{width}x{height} in pixels.")],
    format: Annotated[Format, Path(description="Output format.")],
    search: Annotated[SearchParams, Depends()],
    layer: Annotated[LayerParams, Depends()],
    vis: Annotated[VisParams, Depends()],
    rendering: Annotated[RenderingParams, Depends()],
    dataset: Annotated[DatasetParams, Depends()],
    colormap: Annotated[Any, Depends(ColorMapParams)],
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None,
    dst_crs: Annotated[CRS | None, Depends(DstCRSParams)] = None,
) -> Response:
    """The mosaic of ``bbox`` on a width x height grid in ``dst_crs``."""
    width, height = _size(size, request.app.state.settings.max_export_pixels)
    return _render(
        request,
        collection,
        _bbox(extent),
        width,
        height,
        format,
        coord_crs,
        dst_crs,
        search,
        layer,
        vis,
        rendering,
        dataset,
        colormap,
    )


@router.post(
    "/collections/{collection_id}/feature",
    response_class=Response,
    summary="Export the mosaic inside a GeoJSON feature",
)
def feature_export(
    request: Request,
    collection: Annotated[Collection, Depends(get_collection)],
    feature: Annotated[Feature, Body(description="GeoJSON Feature (in coord_crs).")],
    search: Annotated[SearchParams, Depends()],
    layer: Annotated[LayerParams, Depends()],
    vis: Annotated[VisParams, Depends()],
    rendering: Annotated[RenderingParams, Depends()],
    dataset: Annotated[DatasetParams, Depends()],
    colormap: Annotated[Any, Depends(ColorMapParams)],
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
    bbox = tuple(feature_bounds(shape))
    if bbox[0] >= bbox[2] or bbox[1] >= bbox[3]:
        raise BadRequest("feature geometry has an empty extent; use a polygon")
    return _render(
        request,
        collection,
        bbox,
        width,
        height,
        format,
        coord_crs,
        dst_crs,  # type: ignore[arg-type]
        search,
        layer,
        vis,
        rendering,
        dataset,
        colormap,
        shape=shape,
    )
