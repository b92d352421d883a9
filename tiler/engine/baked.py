"""Reading baked layers: opening exports at start, and a tile of one for a request.

A baked COG holds the output bands' raw values, then a validity band (255 valid, 0
masked); its band descriptions are the band names. A tile is read with rio-tiler's
``Reader.tile`` at nearest resampling (every output pixel is one pixel of the COG or of
one of its overviews, each the quality mosaic at its level's resolution or decimated by
nearest neighbour: all bands of one winner, never a blend), the validity band giving the
mask. Files are opened through the engine's dataset cache, so a
remote URL is signed by the engine's credentials like any other read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from rio_tiler.constants import WGS84_CRS
from rio_tiler.errors import RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData

from tiler.catalog.baked import VALID, BakedLayer, BakedLayerError
from tiler.catalog.models import Item
from tiler.engine.datasets import DatasetCache
from tiler.engine.grids import TileGrid
from tiler.engine.outputs import DERIVED, INDEX
from tiler.errors import TilerError

logger = logging.getLogger(__name__)

#: the type of each derived band in live tiles (:func:`tiler.engine.outputs.compose`)
_DERIVED_TYPES = dict.fromkeys(DERIVED, "float64") | {INDEX: "int32"}


def open_layers(hrefs: Mapping[str, str], datasets: DatasetCache) -> list[BakedLayer]:
    """Open each baked COG and parse its tags (at start: a bad one stops the server).

    Args:
        hrefs: {name: path or URL}, from the operator.
        datasets: the engine's dataset cache (signed opens).

    Raises:
        BakedLayerError: a file that cannot be opened, or that is not a ``tiler export``
            COG (the message names the layer, not a signed URL).
    """
    layers = []
    for name, href in hrefs.items():
        try:
            with datasets.open(href) as ds:
                tags = ds.tags()
                descriptions = tuple(ds.descriptions)
                bounds = transform_bounds(ds.crs, WGS84_CRS, *ds.bounds, densify_pts=21)
                dtype = ds.dtypes[0]
        except (RasterioError, OSError, TilerError) as exc:
            text = datasets.credentials.scrub(f"cannot open {href}: {exc}")  # signed URLs
            raise BakedLayerError(f"baked layer {name!r}: {text}") from exc
        layer = BakedLayer.from_tags(name, href, tags, bounds, dtype)
        if descriptions != (*layer.bands, "valid"):
            raise BakedLayerError(
                f"baked layer {name!r}: band descriptions {descriptions} are not its bands "
                f"{layer.bands} and the validity band"
            )
        logger.info(
            "baked layer %s: collection %s, quality %s, bands %s",
            name,
            layer.collection,
            layer.quality,
            ",".join(layer.bands),
        )
        layers.append(layer)
    return layers


def band_types(
    layer: BakedLayer, sample: Item | None, declared: Mapping[str, str], datasets: DatasetCache
) -> dict[str, str]:
    """The type of each band of ``layer`` in live tiles.

    Derived bands have their own, unscaled bands float64, others their declared
    ``raster:bands`` type, else the type of the sample item's file (unreadable: unknown).
    """
    types: dict[str, str] = {}
    for name in layer.bands:
        kind = _DERIVED_TYPES.get(name) or ("float64" if layer.unscale else declared.get(name))
        band = sample.bands.get(name) if sample is not None else None
        if kind is None and band is not None:
            try:
                with datasets.open(band.href) as ds:
                    kind = ds.dtypes[band.bidx - 1]
            except (RasterioError, OSError, TilerError) as exc:
                logger.warning(
                    "baked layer %s: type of band %s unknown (%s)", layer.name, name, exc
                )
        if kind is not None:
            types[name] = kind
    return types


def live_dtype(bands: Sequence[str], data_types: Mapping[str, str], stored: str) -> numpy.dtype:
    """The type a live tile of ``bands`` has (a band of unknown type: ``stored``).

    Args:
        bands: the output bands.
        data_types: the catalogue's known type of each file band.
        stored: the baked file's type.
    """
    kinds = [numpy.dtype(_DERIVED_TYPES.get(b) or data_types.get(b) or stored) for b in bands]
    return numpy.dtype(numpy.result_type(*kinds))


def read_tile(
    layer: BakedLayer,
    grid: TileGrid,
    bands: Sequence[str],
    datasets: DatasetCache,
    dtype: numpy.dtype | None = None,
) -> ImageData | None:
    """The tile ``grid`` of ``bands`` from ``layer``; None when it is outside the layer.

    Args:
        layer: the baked layer (holding every band of ``bands``).
        grid: the tile.
        bands: the output bands, in output order.
        datasets: the engine's dataset cache.
        dtype: the values' type (default: the file's).

    Raises:
        BakedLayerError: the file cannot be read now.
    """
    indexes = [layer.bands.index(b) + 1 for b in bands] + [len(layer.bands) + 1]
    try:
        with (
            datasets.open(layer.href) as ds,
            Reader(layer.href, dataset=ds, tms=grid.tms) as src,
        ):
            image = src.tile(
                grid.x,
                grid.y,
                grid.z,
                tilesize=grid.tilesize,
                indexes=indexes,
                resampling_method="nearest",
                reproject_method="nearest",
            )
    except TileOutsideBounds:
        return None
    except (RasterioError, RioTilerError, OSError, TilerError) as exc:
        text = datasets.credentials.scrub(str(exc))  # GDAL names the signed URL
        raise BakedLayerError(f"baked layer {layer.name!r} cannot be read: {text}") from exc
    data = numpy.ma.getdata(image.array)
    # the validity band alone: rio-tiler masks every band of a file with an alpha band
    # when the alpha band itself is read; outside the file the warp fills it with 0
    masked = data[-1] != VALID
    values = data[:-1].astype(dtype or data.dtype)
    values[:, masked] = 0
    mask = numpy.broadcast_to(masked, values.shape).copy()
    return ImageData(
        numpy.ma.MaskedArray(values, mask=mask),
        bounds=image.bounds,
        crs=image.crs,
        band_names=list(bands),
    )
