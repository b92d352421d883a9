"""The naive Dask quality mosaic that benchmarks/export.py compares ``tiler export`` with.

What a user of the Pangeo stack writes without this project: odc-stac loads EVERY item of
the selection as one time slice (``groupby="id"``: two items of one datetime stay apart,
in the order given, which is the collection's order) onto the export's own grid (same CRS,
transform and size; nearest resampling, as a same-grid export has none), chunked in space
like the export and whole in time; then per pixel the argmax over time of the quality
(``-MSK_CLDPRB``; nodata 255 is never a winner; ties go to the first item, numpy's argmax
rule), and the winner's bands; a pixel is valid where some item has a valid quality and no
band of the winner is nodata (0). The result, bands then a validity band (255 valid, 0
masked), is written as a COG by odc-geo's ``save_cog_with_dask`` (the workers compress the
tiles) on the same cluster.

Needs ``odc-stac`` (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy
import pystac
import xarray
from affine import Affine
from distributed import Client
from odc.geo.cog import save_cog_with_dask
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from odc.stac import load

#: MSK_CLDPRB's nodata, and the reflectance bands'
QUALITY_NODATA, BAND_NODATA = 255, 0


def stac_items(collection: Path, ids: Sequence[str]) -> list[pystac.Item]:
    """The items ``ids`` of a generated collection file, in that order, hrefs absolute."""
    doc = json.loads(collection.read_text())
    by_id = {f["id"]: f for f in doc["features"]}
    items = []
    for item_id in ids:
        feature = json.loads(json.dumps(by_id[item_id]))
        for asset in feature["assets"].values():
            asset["href"] = str((collection.parent / asset["href"]).resolve())
        items.append(pystac.Item.from_dict(feature))
    return items


def _pick(quality: numpy.ndarray, *bands: numpy.ndarray) -> numpy.ndarray:
    """One spatial block: (time, y, x) quality and bands -> (bands + 1, y, x) uint16."""
    q = numpy.where(quality == QUALITY_NODATA, -numpy.inf, -quality.astype("float32"))
    has = numpy.isfinite(q).any(axis=0)
    win = numpy.argmax(q, axis=0)[None]  # the first maximum: ties to the first item
    out = numpy.zeros((len(bands) + 1, *quality.shape[1:]), dtype="uint16")
    valid = has.copy()
    for i, band in enumerate(bands):
        values = numpy.take_along_axis(band, win, axis=0)[0]
        valid &= values != BAND_NODATA
        out[i] = values
    out[: len(bands), ~valid] = 0
    out[len(bands)] = numpy.where(valid, 255, 0)
    return out


def naive_mosaic(
    items: Sequence[pystac.Item],
    crs: Any,
    transform: Affine,
    shape: tuple[int, int],
    chunk: int,
    quality: str = "MSK_CLDPRB",
    bands: Sequence[str] = ("B04", "B03", "B02"),
) -> xarray.DataArray:
    """The lazy mosaic: (band, y, x) uint16, the bands then ``valid``."""
    gbox = GeoBox(shape, transform, crs)
    ds = load(
        items,
        bands=[quality, *bands],
        geobox=gbox,
        chunks={"x": chunk, "y": chunk},
        groupby="id",
        resampling="nearest",
        fail_on_error=True,
    )
    arrays = [ds[name].data.rechunk({0: -1}) for name in (quality, *bands)]
    out = da.map_blocks(
        _pick,
        *arrays,
        dtype="uint16",
        drop_axis=0,
        new_axis=0,
        chunks=((len(bands) + 1,), *arrays[0].chunks[1:]),
    )
    coords = {"band": [*bands, "valid"], **xr_coords(gbox)}
    return xarray.DataArray(out, dims=("band", "y", "x"), coords=coords)


def naive_export(
    collection: Path,
    ids: Sequence[str],
    crs: Any,
    transform: Affine,
    shape: tuple[int, int],
    out: Path,
    client: Client,
    chunk: int = 1024,
) -> None:
    """Load, argmax and write the COG ``out`` on ``client``'s cluster."""
    mosaic = naive_mosaic(stac_items(collection, ids), crs, transform, shape, chunk)
    job = save_cog_with_dask(mosaic, str(out), blocksize=512, client=client)
    if hasattr(job, "compute"):
        job.compute()
