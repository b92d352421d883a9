"""Overview levels of an export: each level is the quality mosaic at its resolution.

The exports run chunk by chunk in this process (support.baked: the real plan, chunk runner,
part store and COG writer; test_export.py runs them on Dask). A level of the COG is compared
bit for bit with an export of the same region at that level's pixel size, planned on its
own (its grid snapped to that resolution, its own selection).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from support.baked import bake

from tiler.export.chunks import ExportError, ExportSpec
from tiler.export.grid import overview_factors
from tiler.export.plan import NEAREST, Region, plan_export

UTM = CRS.from_epsg(32633)
#: corners on multiples of 40 m: 104 x 92 px at 10 m, levels of 52 x 46 and 26 x 23 px
#: (32 px tiles); the 40 m export's grid snaps to multiples of 40 m: level 2's grid
BBOX = (499880.0, 4999800.0, 500920.0, 5000720.0)
#: the same 10 m west: a 20 m export aligns to the 20 m item's pixels (x = 10 mod 20 m),
#: level 1's grid
BBOX_WEST = (499870.0, 4999800.0, 500910.0, 5000720.0)
BANDS = ("a", "b", "q", "quality", "_index", "_date")


def _spec(synthetic: dict[str, Any]) -> ExportSpec:
    return ExportSpec((str(synthetic["path"]),), "test", "q", BANDS)


def _read(path: Path, level: int = 0) -> numpy.ndarray:
    """Level ``level`` of the COG (0: full resolution), every band."""
    kw = {"overview_level": level - 1} if level else {}
    with rasterio.open(path, **kw) as src:
        return src.read()


@pytest.mark.parametrize(
    ("width", "height", "block"),
    [(104, 92, 32), (100, 90, 32), (1025, 3, 512), (1024, 1024, 512), (513, 2, 256), (5, 5, 32)],
)
def test_levels_are_as_many_as_gdal_makes(tmp_path, width, height, block):
    with MemoryFile() as mem:
        profile = {"driver": "GTiff", "width": width, "height": height, "count": 1}
        with mem.open(**profile, dtype="uint8") as ds:
            ds.write(numpy.zeros((1, height, width), "uint8"))
        with mem.open() as ds:
            rasterio.shutil.copy(ds, tmp_path / "c.tif", driver="COG", BLOCKSIZE=block)
    with rasterio.open(tmp_path / "c.tif") as src:
        assert len(src.overviews(1)) == len(overview_factors(width, height, block))


@pytest.mark.parametrize(("bbox", "k"), [(BBOX_WEST, 1), (BBOX, 2)], ids=["20m", "40m"])
def test_each_level_is_the_mosaic_at_its_resolution(synthetic, tmp_path, bbox, k):
    spec = _spec(synthetic)
    out = tmp_path / "out.tif"
    plan = bake(spec, Region(bbox, UTM), out, chunk=32, block=32)
    levels = plan.levels()
    assert [(g.width, g.height) for g in levels] == [(104, 92), (52, 46), (26, 23)]
    with rasterio.open(out) as src:
        assert src.overviews(1) == [2, 4]
        assert src.descriptions == (*BANDS, "valid")
    alone = tmp_path / "alone.tif"
    level_plan = bake(spec, Region(bbox, UTM, None, 10.0 * 2**k), alone, chunk=32, block=32)
    assert level_plan.grid == levels[k]  # the same grid
    assert level_plan.positions == plan.positions  # the same selection
    expected, got = _read(alone), _read(out, k)
    assert got.dtype == expected.dtype
    assert (got[-1] == 255).any() and (got[-1] == 0).any()  # masked pixels are checked
    numpy.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("crs", "resolution"), [(None, None), (CRS.from_epsg(3857), 7.0)], ids=["native", "3857"]
)
def test_one_chunk_or_many_gives_identical_bytes_with_levels(synthetic, tmp_path, crs, resolution):
    region = Region(BBOX, UTM, crs, resolution)
    many = bake(_spec(synthetic), region, tmp_path / "many.tif", chunk=32, block=32)
    one = bake(_spec(synthetic), region, tmp_path / "one.tif", chunk=512, block=32)
    assert len(many.levels()) >= 3 and len(one.tasks()) == len(one.levels())
    assert len(many.tasks()) > len(many.windows()) + 2  # levels of several chunks
    assert (tmp_path / "many.tif").read_bytes() == (tmp_path / "one.tif").read_bytes()


def test_nearest_overviews_are_decimated_by_gdal(synthetic, tmp_path):
    region = Region(BBOX, UTM)
    nearest = bake(_spec(synthetic), region, tmp_path / "n.tif", overviews=NEAREST)
    bake(_spec(synthetic), region, tmp_path / "m.tif")
    assert nearest.levels() == [nearest.grid] and nearest.tasks() == [
        (0, w) for w in nearest.windows()
    ]
    full = _read(tmp_path / "n.tif")
    numpy.testing.assert_array_equal(full, _read(tmp_path / "m.tif"))
    with rasterio.open(tmp_path / "n.tif") as src:
        assert src.overviews(1) == [2, 4]
    for k in (1, 2):
        level = _read(tmp_path / "n.tif", k)
        f = 2**k
        assert any(
            numpy.array_equal(level, full[:, o::f, o::f][:, : level.shape[1], : level.shape[2]])
            for o in range(f)
        ), f"level {k} is not a decimation of the output"


def test_unknown_overviews_are_refused(synthetic):
    with pytest.raises(ExportError, match="overviews"):
        plan_export(_spec(synthetic), Region(BBOX, UTM), 32, 32, overviews="average")
