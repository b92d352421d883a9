"""Route: point inspection, the winner and every item's values at one location."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from rasterio.crs import CRS
from rasterio.warp import transform
from rio_tiler.constants import WGS84_CRS
from titiler.core.dependencies import DatasetParams

from tiler.api.admission import OVERLOAD_RESPONSES
from tiler.api.crs import CoordCRSParams, check_coordinates
from tiler.api.deps import (
    LayerParams,
    SearchParams,
    get_catalog,
    get_engine,
    read_options,
    resolve_layer,
)
from tiler.api.params import parse_floats
from tiler.catalog.base import Catalog
from tiler.engine.grids import PointGrid
from tiler.engine.outputs import winner_values
from tiler.engine.service import Engine
from tiler.errors import BadRequest, InvalidCRS, quoted, redact

router = APIRouter(tags=["Inspection"])


def _coords(value: str) -> tuple[float, float]:
    expected = "lon,lat, e.g. -103.19,40.14"
    nums = parse_floats("point", value[:200], expected=expected)
    if len(nums) != 2:
        raise BadRequest(f"point={quoted(value, 200)}: expected {expected}")
    return nums[0], nums[1]


def _located(lon: float, lat: float, crs: CRS, what: str) -> None:
    """The point (already within ``crs``'s range) has a place on Earth."""
    check_coordinates("coord_crs", crs, (lon,), (lat,), what)
    if crs == WGS84_CRS:
        return
    try:
        xs, ys = transform(crs, WGS84_CRS, [lon], [lat])
    except Exception:  # PROJ errors of many classes: the coordinates' fault
        xs, ys = [math.nan], [math.nan]
    if not (math.isfinite(xs[0]) and math.isfinite(ys[0])):
        raise InvalidCRS(f"{what} has no place on Earth in that coord_crs")


def _reason(text: str | None) -> str | None:
    """A skipped item's reason without paths or URLs (the log has them)."""
    return None if text is None else redact(text)


@router.get(
    "/collections/{collection_id}/point/{coordinates}",
    summary="Winner and per-item series at a point",
    responses=OVERLOAD_RESPONSES,
)
def point(
    catalog: Annotated[Catalog, Depends(get_catalog)],
    engine: Annotated[Engine, Depends(get_engine)],
    coordinates: Annotated[str, Path(description="lon,lat (in coord_crs, default WGS84).")],
    search: Annotated[SearchParams, Depends()],
    layer: Annotated[LayerParams, Depends()],
    dataset: Annotated[DatasetParams, Depends()],
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None,
) -> dict[str, Any]:
    """The winner (id, index, datetime), its values, and the series in collection order."""
    lon, lat = _coords(coordinates)
    crs = coord_crs or WGS84_CRS
    _located(lon, lat, crs, f"point {quoted(coordinates, 200)}")
    info = catalog.info()
    chosen = resolve_layer(info, layer)
    bands = list(dict.fromkeys([*chosen.bands, *info.bands]))
    items, series = engine.point(
        catalog,
        search.search(),
        PointGrid(lon, lat, crs),
        chosen.quality,
        bands,
        read_options(dataset, catalog, [*chosen.quality.bands, *bands]),
    )
    winner = None
    if series.winner is not None:
        w = items[series.winner]
        winner = {"id": w.id, "index": series.winner, "datetime": w.isodatetime}
    return {
        "coordinates": [lon, lat],
        "quality": chosen.quality.text,
        "winner": winner,
        "values": winner_values(chosen.bands, items, series.winner, series.quality, series.values),
        "items": [
            {
                "id": it.id,
                "index": i,
                "datetime": it.isodatetime,
                "quality": series.quality[i],
                "values": series.values[i],
                "skipped": _reason(series.skipped.get(it.id)),
            }
            for i, it in enumerate(items)
        ],
    }
