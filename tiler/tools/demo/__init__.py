"""A synthetic, deterministic Sentinel-2-like demo collection.

The demo makes this Earth Engine example work out of the box::

    col = (ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED")
           .filterBounds(ee.Geometry.Point(-103.19, 40.14))
           .filterDate("2020-07-01", "2020-09-01"))
    best = col.qualityMosaic("-MSK_CLDPRB")   # least cloudy pixel
    worst = col.qualityMosaic("MSK_CLDPRB")   # cloudiest pixel
    # visualised with bands B4, B3, B2, min 0, max 4500

Nothing is downloaded: :func:`create_demo` paints 13 scenes of a fixed, made-up
landscape (centre-pivot circles, dryland wheat/fallow strips, rangeland, a river with
riparian trees, section-line roads, a small town) on one UTM grid (EPSG:32613,
1536 x 1536 pixels of 20 m, 30.72 km x 30.72 km around lon -103.19, lat 40.14), adds soft
cloud blobs with their shadows and a cloud probability band (``MSK_CLDPRB``, exactly
0 where clear), cuts some scenes at a diagonal swath edge, and writes Cloud Optimized
GeoTIFFs plus a GeoJSON FeatureCollection of STAC 1.0 Items (``demo.json``). Tests can
ask for a smaller demo (fewer pixels around the same centre, fewer scenes) with the
``size`` and ``scenes`` arguments of :func:`create_demo`.

Every random number comes from fixed seeds, so one machine always produces the same
bytes for the same :data:`DEMO_VERSION`. (Other CPUs or numpy builds may differ in the
last bit of some floating point operations; bump :data:`DEMO_VERSION` whenever the
output changes on purpose, so caches created by older versions are not reused.)

A pixel is "cloudy" when ``MSK_CLDPRB > 0``; this includes the faint halo around each
cloud and its shadow (low probabilities, 1..15), which keeps shadows out of a
``-MSK_CLDPRB`` best-pixel mosaic. ``eo:cloud_cover`` is the percentage of cloudy
pixels within the scene footprint. Every pixel is clear in at least one scene, so the
best-pixel mosaic is cloud free.

Modules: :mod:`~tiler.tools.demo.grid` (grid, bands, smooth random fields),
:mod:`~tiler.tools.demo.scenes` (acquisitions and swaths),
:mod:`~tiler.tools.demo.landscape` (ground and greenness),
:mod:`~tiler.tools.demo.clouds` (clouds, shadows, cloud probability),
:mod:`~tiler.tools.demo.writing` (reflectance, COGs, STAC items) and
:mod:`~tiler.tools.demo.create` (atomic creation in a cache directory).
"""

from __future__ import annotations

from tiler.tools.demo.create import (
    DEMO_SCENES,
    DEMO_VERSION,
    create_demo,
    default_demo_dir,
    ensure_demo,
)
from tiler.tools.demo.grid import DEMO_COLLECTION_ID, DEMO_SIZE

__all__ = [
    "DEMO_COLLECTION_ID",
    "DEMO_SCENES",
    "DEMO_SIZE",
    "DEMO_VERSION",
    "create_demo",
    "default_demo_dir",
    "ensure_demo",
]
