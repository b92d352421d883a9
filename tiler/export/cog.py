"""The parts of an export into one Cloud Optimized GeoTIFF, with GDAL's COG driver.

GDAL streams the parts' VRT into the COG (internal tiles, then overviews, then the
layout a COG needs), holding at most its block cache: the region is never in memory.
Overviews use nearest neighbour: every overview pixel is one output pixel, all bands of
one winner and its validity together, never a blend of two items.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import rasterio
import rasterio.shutil

logger = logging.getLogger(__name__)


def write_cog(source: Path, output: Path, block: int) -> None:
    """Copy ``source`` (the parts' VRT) to a COG at ``output`` (via a temporary file).

    Args:
        source: the dataset to copy.
        output: the COG to write (replaced once complete).
        block: internal tile size.
    """
    tmp = output.with_name(output.name + ".tmp")
    options = {
        "BLOCKSIZE": block,
        "COMPRESS": "DEFLATE",
        "PREDICTOR": "YES",
        "OVERVIEW_RESAMPLING": "NEAREST",
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }
    logger.info("writing %s", output)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        rasterio.shutil.copy(str(source), str(tmp), driver="COG", **options)
    os.replace(tmp, output)
