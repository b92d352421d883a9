"""The parts of an export into one Cloud Optimized GeoTIFF, with GDAL's COG driver.

GDAL streams the parts' VRT into the COG (internal tiles, then overviews, then the
layout a COG needs), holding at most its block cache: the region is never in memory.
Overviews (:func:`write_output`) are by default the overview levels' own parts, each level
the quality mosaic computed at its resolution (what a live tile computes at that zoom),
which the parts' VRT names as its overviews and the COG driver copies
(``OVERVIEWS=FORCE_USE_EXISTING``); with ``--overviews nearest`` the driver decimates the
output by nearest neighbour. Either way an overview pixel is one winner's, all bands and
its validity together, never a blend of two items (benchmarks/baked_overviews.py measures
the choice, and averaged overviews).

The COG's GDAL metadata tags record what was computed (:func:`plan_tags`): the
collection, the quality expression, the bands, the normalised search and unscale, and the
tool's version, so that ``tiler serve --baked`` can serve it as a layer of its collection
(:mod:`tiler.catalog.baked`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import rasterio
import rasterio.shutil

from tiler import __version__
from tiler.catalog.baked import export_tags

if TYPE_CHECKING:
    from tiler.export.parts import PartStore
    from tiler.export.plan import ExportPlan

logger = logging.getLogger(__name__)


def plan_tags(plan: ExportPlan) -> dict[str, str]:
    """The metadata tags of ``plan``'s COG: what it computed (see :mod:`tiler.catalog.baked`)."""
    spec = plan.spec
    return export_tags(
        spec.collection, spec.quality, spec.bands, spec.search(), spec.unscale, __version__
    )


def write_cog(
    source: Path,
    output: Path,
    block: int,
    tags: Mapping[str, str] | None = None,
    resampling: str = "NEAREST",
    existing_overviews: bool = False,
) -> None:
    """Copy ``source`` (the parts' VRT) to a COG at ``output`` (via a temporary file).

    Args:
        source: the dataset to copy (a VRT: ``tags`` are written into it first).
        output: the COG to write (replaced once complete).
        block: internal tile size.
        tags: dataset metadata tags of the COG.
        resampling: GDAL's overview resampling (NEAREST: see above; others only to
            measure the choice).
        existing_overviews: copy ``source``'s own overviews (none: the COG has none)
            instead of making them with ``resampling``.
    """
    if tags:
        with rasterio.open(source, "r+") as vrt:
            vrt.update_tags(**tags)
    tmp = output.with_name(output.name + ".tmp")
    options: dict[str, str | int] = {
        "BLOCKSIZE": block,
        "COMPRESS": "DEFLATE",
        "LEVEL": 1,  # deflate's fastest: far less CPU than 6 (benchmarks/README.md)
        "PREDICTOR": "YES",
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }
    if existing_overviews:
        options["OVERVIEWS"] = "FORCE_USE_EXISTING"
    else:
        options["OVERVIEW_RESAMPLING"] = resampling
    logger.info("writing %s", output)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        rasterio.shutil.copy(str(source), str(tmp), driver="COG", **options)
    os.replace(tmp, output)


def write_output(plan: ExportPlan, store: PartStore, output: Path) -> None:
    """Assemble ``store``'s parts of every level of ``plan`` into the COG ``output``.

    Raises:
        ExportError: a part is missing.
    """
    names = list(plan.spec.bands)
    grids = plan.levels()
    overviews = [
        store.vrt(grid, plan.dtype, names, level=k) for k, grid in enumerate(grids) if k > 0
    ]
    source = store.vrt(plan.grid, plan.dtype, names, overviews=overviews)
    write_cog(
        source,
        output,
        plan.block,
        tags=plan_tags(plan),
        existing_overviews=bool(overviews),
    )
