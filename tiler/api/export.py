"""Routes: exports, the mosaic of a bbox or a GeoJSON feature on a chosen grid."""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from typing import Annotated, Any

import numpy
import shapely
import shapely.geometry
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from geojson_pydantic import Feature
from geojson_pydantic.geometries import Geometry
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rio_tiler.constants import WGS84_CRS

from tiler.api.admission import OVERLOAD_RESPONSES
from tiler.api.crs import CoordCRSParams, DstCRSParams, check_coordinates, projected_bounds
from tiler.api.deps import Mosaic, get_engine, get_settings, mosaic_params
from tiler.api.params import parse_extent
from tiler.api.requests_log import add_timing
from tiler.api.responses import Rendered, respond, stats_headers
from tiler.engine.grids import PartGrid
from tiler.engine.service import Engine
from tiler.errors import BadRequest, InvalidGeometry, TooLarge, quoted
from tiler.render import Format, check_encodable, encode
from tiler.settings import Settings

router = APIRouter(tags=["Exports"])

#: matched whole (``fullmatch``: ``$`` would match before a trailing newline), ASCII digits only
_SIZE = re.compile(r"(?P<w>[0-9]{1,9})[xX](?P<h>[0-9]{1,9})")


def _size(value: str, limit: int) -> tuple[int, int]:
    m = _SIZE.fullmatch(value)
    if m is None:
        raise BadRequest(f"size {quoted(value, 40)}: expected {{width}}x{{height}}, e.g. 512x512")
    width, height = int(m["w"]), int(m["h"])
    if width < 1 or height < 1:
        raise BadRequest(f"size {value!r}: width and height must be >= 1")
    if width * height > limit:
        raise TooLarge(
            f"export of {width}x{height} = {width * height} px exceeds the limit of {limit} px"
        )
    return width, height


def bbox_size(
    size: Annotated[str, Path(description="{width}x{height} in pixels.")],
    settings: Annotated[Settings, Depends(get_settings)],
) -> tuple[int, int]:
    """The export's size, checked against the pixel limit before any other work."""
    return _size(size, settings.max_export_pixels)


def feature_size(
    settings: Annotated[Settings, Depends(get_settings)],
    width: Annotated[int, Query(ge=1, le=65536, description="Output width in pixels.")] = 512,
    height: Annotated[int, Query(ge=1, le=65536, description="Output height in pixels.")] = 512,
) -> tuple[int, int]:
    """The export's size, checked against the pixel limit before any other work."""
    return _size(f"{width}x{height}", settings.max_export_pixels)


@dataclass
class Export:
    """What both export routes take besides their extent, size and format."""

    mosaic: Annotated[Mosaic, Depends(mosaic_params)]
    settings: Annotated[Settings, Depends(get_settings)]
    engine: Annotated[Engine, Depends(get_engine)]
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None
    dst_crs: Annotated[CRS | None, Depends(DstCRSParams)] = None


def _checked_grid(
    bbox: tuple[float, float, float, float], size: tuple[int, int], export: Export, what: str
) -> PartGrid:
    """The export grid, once the bbox is known to lie where its CRSs can place it."""
    bounds_crs = export.coord_crs or WGS84_CRS
    w, s, e, n = bbox
    check_coordinates("coord_crs", bounds_crs, (w, e), (s, n), what)
    projected_bounds(bbox, bounds_crs, WGS84_CRS, what)  # the footprint searched
    dst = export.dst_crs or bounds_crs
    if dst != bounds_crs:  # e.g. a pole is at infinity in Mercator: the grid must be finite
        x0, y0, x1, y1 = projected_bounds(bbox, bounds_crs, dst, what)
        check_coordinates("dst_crs", dst, (x0, x1), (y0, y1), f"{what} projected to dst_crs")
    return PartGrid(bbox, bounds_crs, dst, size[0], size[1])


def _check_encodable(mosaic: Mosaic, fmt: Format, size: tuple[int, int]) -> None:
    """Refuse, before any work, an export that ``fmt`` cannot encode (bands, sides)."""
    vis = mosaic.layer.vis
    check_encodable(fmt, len(mosaic.layer.bands), *size, colormap=bool(vis.palette or vis.colormap))


def _shape(feature: Feature[Geometry, dict[str, Any]]) -> dict[str, Any]:
    """The feature's geometry as GeoJSON with finite coordinates and an area."""
    if feature.geometry is None:
        raise InvalidGeometry("feature has no geometry: give a Polygon or MultiPolygon")
    shape = feature.geometry.model_dump(exclude_none=True)
    shape.pop("bbox", None)  # ours to compute; a client's (2-D or 3-D) is not needed
    try:
        with warnings.catch_warnings():  # NaN coordinates warn, then fail below
            warnings.simplefilter("ignore", RuntimeWarning)
            geom = shapely.geometry.shape(shape)
    except Exception as exc:  # shapely/GEOS errors: the geometry's fault
        raise InvalidGeometry(f"feature geometry is not valid GeoJSON: {exc}") from None
    if geom.is_empty:
        raise InvalidGeometry(f"feature geometry ({shape.get('type')}) is empty; use a polygon")
    if not (numpy.isfinite(shapely.get_coordinates(geom)).all()):
        raise InvalidGeometry("feature geometry coordinates must be finite numbers")
    return shape


def _render(
    request: Request,
    export: Export,
    grid: PartGrid,
    fmt: Format,
    shape: dict[str, Any] | None = None,
) -> Response:
    mosaic = export.mosaic
    chosen = mosaic.layer
    image, stats = export.engine.mosaic(
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
    started = time.perf_counter()
    content, media_type = encode(image, fmt, chosen.vis)
    headers = stats_headers(stats)
    add_timing(headers, "render", time.perf_counter() - started)
    rendered = Rendered(content, media_type, headers)
    return respond(request, rendered, export.settings.cache_control)


@router.get(
    "/collections/{collection_id}/bbox/{extent}/{size}.{format}",
    response_class=Response,
    summary="Export the mosaic of a bbox",
    responses=OVERLOAD_RESPONSES,
)
def bbox_export(
    request: Request,
    size: Annotated[tuple[int, int], Depends(bbox_size)],
    extent: Annotated[str, Path(description="minx,miny,maxx,maxy in coord_crs.")],
    format: Annotated[Format, Path(description="Output format.")],
    export: Annotated[Export, Depends()],
) -> Response:
    """The mosaic of ``bbox`` on a width x height grid in ``dst_crs``."""
    _check_encodable(export.mosaic, format, size)
    bbox = parse_extent(extent)
    grid = _checked_grid(bbox, size, export, f"bbox {quoted(extent, 200)}")
    return _render(request, export, grid, format)


@router.post(
    "/collections/{collection_id}/feature",
    response_class=Response,
    summary="Export the mosaic inside a GeoJSON feature",
    responses=OVERLOAD_RESPONSES,
)
def feature_export(
    request: Request,
    size: Annotated[tuple[int, int], Depends(feature_size)],
    feature: Annotated[
        Feature[Geometry, dict[str, Any]], Body(description="GeoJSON Feature (in coord_crs).")
    ],
    export: Annotated[Export, Depends()],
    format: Annotated[Format, Query(description="Output format.")] = Format.tif,
) -> Response:
    """The mosaic of the feature's bounds, masked outside the feature."""
    _check_encodable(export.mosaic, format, size)
    shape = _shape(feature)
    w, s, e, n = shapely.geometry.shape(shape).bounds
    if w >= e or s >= n:
        raise InvalidGeometry("feature geometry has an empty extent; use a polygon")
    grid = _checked_grid((w, s, e, n), size, export, "feature geometry")
    return _render(request, export, grid, format, shape=shape)
