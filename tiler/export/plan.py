"""Planning an export in the client: the layer, the selection, the grid and the data type.

The client opens the catalogue once to resolve the layer (the collection's default quality
and bands, common names), to select the items under the region (their positions in
collection order are the export's ``_index``, and the only items chunks may use), and to
read the headers of a few of them: the grid's CRS defaults to the most common CRS of the
output bands' files, its resolution to their finest pixel size, and a grid in a file's own
CRS and pixel size is aligned to that file's pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from rio_tiler.constants import WGS84_CRS
from shapely.geometry import box

from tiler.catalog.base import Catalog
from tiler.catalog.models import Item
from tiler.engine.credentials import credentials_from
from tiler.engine.expression import parse
from tiler.engine.extents import Raster
from tiler.engine.io import DatasetCache
from tiler.engine.outputs import DERIVED, physical
from tiler.errors import TilerError
from tiler.export.chunks import ExportError, ExportSpec, open_catalog, output_dtype
from tiler.export.grid import (
    BLOCK,
    CHUNK,
    GridError,
    OutputGrid,
    Window,
    finest,
    make_grid,
    most_common_crs,
    overview_factors,
)

logger = logging.getLogger(__name__)

#: items whose file headers are read to choose the grid's defaults (evenly spread)
SAMPLE = 16
#: overviews computed as the quality mosaic at each level's resolution (chunks on Dask)
MOSAIC = "mosaic"
#: overviews decimated from the output by GDAL's COG driver (nearest neighbour)
NEAREST = "nearest"
OVERVIEWS = (MOSAIC, NEAREST)


@dataclass(frozen=True)
class Region:
    """Where to export: a bbox in ``bbox_crs``, on a grid in ``crs`` at ``resolution``.

    ``crs`` and ``resolution`` None: from the items (:mod:`tiler.export.plan`).
    """

    bbox: tuple[float, float, float, float]
    bbox_crs: CRS = WGS84_CRS
    crs: CRS | None = None
    resolution: float | None = None


@dataclass(frozen=True)
class ExportPlan:
    """An export, ready to run: the resolved spec, grid, type, selection and chunking.

    Attributes:
        spec: the export's spec (quality and bands resolved).
        grid: the output grid.
        dtype: the output's data type (values and validity band).
        positions: item id -> position in collection order over the whole grid.
        chunk: chunk side in pixels (a multiple of ``block``).
        block: the output's internal tile size.
        overviews: :data:`MOSAIC` (each overview level computed as the quality mosaic at
            its resolution, in chunks like the output's) or :data:`NEAREST` (decimated by
            GDAL's COG driver).
    """

    spec: ExportSpec
    grid: OutputGrid
    dtype: str
    positions: dict[str, int]
    chunk: int = CHUNK
    block: int = BLOCK
    overviews: str = MOSAIC

    def windows(self) -> list[Window]:
        """The chunks of the output's grid, row by row."""
        return self.grid.windows(self.chunk)

    def levels(self) -> list[OutputGrid]:
        """The grids computed: the output's, then the overview levels'.

        With :data:`MOSAIC` overviews, as many levels as GDAL's COG driver makes
        (:func:`~tiler.export.grid.overview_factors`); else none.
        """
        if self.overviews != MOSAIC:
            return [self.grid]
        factors = overview_factors(self.grid.width, self.grid.height, self.block)
        return [self.grid, *(self.grid.overview(f) for f in factors)]

    def tasks(self) -> list[tuple[int, Window]]:
        """Every chunk to compute as (level, window): the output's, then the levels'."""
        return [(k, w) for k, grid in enumerate(self.levels()) for w in grid.windows(self.chunk)]

    def document(self) -> dict[str, Any]:
        """What the pixels depend on, as JSON (a resumed export must match it)."""
        ids = "\n".join(sorted(self.positions, key=self.positions.__getitem__))
        return {
            "spec": self.spec.fingerprint(),
            "bands": list(self.spec.bands),
            "dtype": self.dtype,
            "crs": self.grid.crs.to_wkt(),
            "transform": list(self.grid.transform)[:6],
            "width": self.grid.width,
            "height": self.grid.height,
            "chunk": self.chunk,
            "block": self.block,
            "overviews": self.overviews,
            "selection": hashlib.sha256(ids.encode()).hexdigest()[:16],
        }


def _headers(
    items: Sequence[Item], names: Sequence[str], datasets: DatasetCache
) -> tuple[list[Raster], dict[str, str]]:
    """The rasters of ``names`` in a sample of ``items``, and each band's stored type."""
    step = max(1, len(items) // SAMPLE)
    sample = list(items[::step][:SAMPLE])
    rasters: list[Raster] = []
    dtypes: dict[str, str] = {}
    untyped = [*sample, *(item for item in items if item not in sample)]
    for n, item in enumerate(untyped):
        wanted = [b for b in names if n < len(sample) or b not in dtypes]
        if not wanted:
            break
        for name in wanted:
            band = item.bands.get(name)
            if band is None:
                continue
            try:
                with datasets.open(band.href) as ds:
                    if n < len(sample):
                        rasters.append(Raster(ds.crs, ds.transform, ds.width, ds.height))
                    dtypes.setdefault(name, ds.dtypes[band.bidx - 1])
            except (RasterioError, OSError, TilerError) as exc:
                logger.warning("item %s band %s: header not read (%s)", item.id, name, exc)
    return rasters, dtypes


def resolve(spec: ExportSpec, bands_known: Sequence[str], default: dict[str, Any]) -> ExportSpec:
    """``spec`` with the collection's default quality and bands where it has none."""
    quality = spec.quality or default.get("quality")
    if not quality:
        raise ExportError(
            f"collection {spec.collection!r} declares no default quality: give --quality"
        )
    bands = spec.bands or tuple(str(b) for b in default.get("bands") or ())
    if not bands:
        raise ExportError(f"collection {spec.collection!r} declares no default bands: give --bands")
    return dataclasses.replace(spec, quality=str(quality), bands=tuple(bands))


def plan_export(
    spec: ExportSpec,
    region: Region,
    chunk: int = CHUNK,
    block: int = BLOCK,
    overviews: str = MOSAIC,
) -> ExportPlan:
    """Resolve ``spec`` and ``region`` into an :class:`ExportPlan`.

    Raises:
        ExportError: an unknown collection, band or bad expression, no item under the
            region, a region that makes no grid, or unknown ``overviews``.
    """
    if chunk < block or chunk % block:
        raise ExportError(f"chunk {chunk}: must be a multiple of the internal tile size {block}")
    if overviews not in OVERVIEWS:
        raise ExportError(f"overviews {overviews!r}: expected one of {', '.join(OVERVIEWS)}")
    catalog = open_catalog(spec)
    try:
        spec, grid, dtypes, selected = _plan(catalog, spec, region)
    except TilerError as exc:  # the catalogue's and the parsers' refusals
        raise ExportError(str(exc)) from exc
    finally:
        catalog.close()
    dtype = output_dtype(spec.bands, dtypes, spec.unscale).name
    positions = {item.id: i for i, item in enumerate(selected)}
    return ExportPlan(spec, grid, dtype, positions, chunk, block, overviews)


def _plan(
    catalog: Catalog, spec: ExportSpec, region: Region
) -> tuple[ExportSpec, OutputGrid, dict[str, str], list[Item]]:
    """The resolved spec, the grid, the bands' stored types and the selection."""
    info = catalog.info()
    spec = resolve(spec, info.bands, info.default_render)
    expr = parse(spec.quality or "", info.bands, info.aliases)
    bands = tuple(info.resolve_band(b, DERIVED) for b in spec.bands)
    search = spec.search()
    spec = dataclasses.replace(spec, quality=expr.text, bands=bands)
    try:
        lonlat = transform_bounds(region.bbox_crs, WGS84_CRS, *region.bbox, densify_pts=21)
    except RasterioError as exc:
        raise ExportError(f"bbox {region.bbox}: {exc}") from exc
    items = catalog.search(search, box(*lonlat), None)
    if not items:
        raise ExportError(f"no item of {spec.collection} matches the filters under the bbox")
    names = physical(bands) or list(expr.bands)
    datasets = DatasetCache(8, credentials_from(spec.settings))
    try:
        rasters, dtypes = _headers(items, names, datasets)
    finally:
        datasets.close()
    missing = [b for b in physical(bands) if b not in dtypes]
    if missing and not spec.unscale:
        raise ExportError(f"no file of band(s) {', '.join(missing)} could be read")
    try:
        crs = region.crs or most_common_crs(rasters)
        if region.resolution is not None:
            res = (region.resolution, region.resolution)
            align = next((r for r in rasters if r.crs == crs and r.resolution == res), None)
        else:
            xres, yres, align = finest(rasters, crs)
            res = (xres, yres)
        grid = make_grid(region.bbox, region.bbox_crs, crs, res, align)
    except GridError as exc:
        raise ExportError(str(exc)) from exc
    return spec, grid, dtypes, catalog.search(search, grid.footprint(), None)
