"""Point inspection: the winner and every item's values at one location."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from morecantile.defaults import tms as default_tms
from rasterio.crs import CRS
from titiler.core.dependencies import CoordCRSParams, DatasetParams

from tiler.collection import Collection
from tiler.dependencies import (
    LayerParams,
    SearchParams,
    get_collection,
    read_options,
    resolve_layer,
)
from tiler.errors import BadRequest
from tiler.reader import INDEX, PROVENANCE, QUALITY
from tiler.routes import make_backend

router = APIRouter()


def _coords(value: str) -> tuple[float, float]:
    try:
        lon_s, lat_s = value.split(",")
        lon, lat = float(lon_s), float(lat_s)
    except ValueError:
        raise BadRequest(f"point {value!r}: expected lon,lat, e.g. -103.19,40.14") from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise BadRequest(f"point {value!r}: coordinates must be finite numbers")
    return lon, lat


@router.get(
    "/collections/{collection_id}/point/{coordinates}",
    summary="Winner and per-item series at a point",
)
def point(
    request: Request,
    collection: Annotated[Collection, Depends(get_collection)],
    coordinates: Annotated[str, Path(description="lon,lat (in coord_crs, default WGS84).")],
    search: Annotated[SearchParams, Depends()],
    layer: Annotated[LayerParams, Depends()],
    dataset: Annotated[DatasetParams, Depends()],
    coord_crs: Annotated[CRS | None, Depends(CoordCRSParams)] = None,
) -> dict[str, Any]:
    """The winner (id, index, datetime), its values, and the series in collection order."""
    lon, lat = _coords(coordinates)
    crs = coord_crs or CRS.from_epsg(4326)
    if crs == CRS.from_epsg(4326) and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequest(f"point {coordinates!r}: lon must be in [-180, 180], lat in [-90, 90]")
    chosen = resolve_layer(collection, layer)
    bands = list(dict.fromkeys([*chosen.bands, *collection.bands]))
    backend = make_backend(request, collection, default_tms.get("WebMercatorQuad"))
    items, series = backend.point(
        lon,
        lat,
        quality=chosen.quality,
        bands=bands,
        coord_crs=crs,
        search=search.search(),
        options=read_options(dataset),
    )
    winner = None
    values: dict[str, float | None] = dict.fromkeys(chosen.bands)
    if series.winner is not None:
        w = items[series.winner]
        winner = {"id": w.id, "index": series.winner, "datetime": w.isodatetime}
        for name in chosen.bands:
            if name == QUALITY:
                values[name] = series.quality[series.winner]
            elif name == INDEX:
                values[name] = float(series.winner)
            elif name in PROVENANCE:
                values[name] = PROVENANCE[name](w)
            else:
                values[name] = series.values[series.winner].get(name)
    return {
        "coordinates": [lon, lat],
        "quality": chosen.quality.text,
        "winner": winner,
        "values": values,
        "items": [
            {
                "id": it.id,
                "index": i,
                "datetime": it.isodatetime,
                "quality": series.quality[i],
                "values": series.values[i],
                "skipped": series.skipped.get(it.id),
            }
            for i, it in enumerate(items)
        ],
    }
