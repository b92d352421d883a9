"""Reading helpers: the remembered default transform (a rasterio leak worked around)."""

from __future__ import annotations

import rio_tiler.utils
from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform

from tiler.engine.io import _default_transform, default_transform
from tiler.process import configure_gdal


def test_default_transforms_are_remembered_and_equal_rasterios():
    configure_gdal()
    assert rio_tiler.utils.calculate_default_transform is default_transform
    args = (CRS.from_epsg(32613), CRS.from_epsg(3857), 1536, 1536)
    bounds = (700000.0, 4430000.0, 730720.0, 4460720.0)
    before = _default_transform.cache_info().hits
    first = default_transform(*args, *bounds)
    again = default_transform(*args, *bounds)
    assert first == again == calculate_default_transform(*args, *bounds)
    assert _default_transform.cache_info().hits == before + 1


def test_other_calls_pass_through():
    args = ("EPSG:32613", "EPSG:3857", 1536, 1536)  # strings: not remembered
    bounds = (700000.0, 4430000.0, 730720.0, 4460720.0)
    assert default_transform(*args, *bounds) == calculate_default_transform(*args, *bounds)
    kwargs = {"resolution": 100}
    assert default_transform(*args, *bounds, **kwargs) == calculate_default_transform(
        *args, *bounds, **kwargs
    )
