"""An engine's reads through ItemReader: reprojected reads gathered, overview levels read
through the DatasetCache's own handles, every read equal to rio-tiler's ``Reader.tile``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import morecantile
import numpy
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rio_tiler.io import Reader
from shapely.geometry import box

from tiler.catalog.models import Band, Item
from tiler.engine.datasets import DatasetCache
from tiler.engine.grids import TileGrid
from tiler.engine.io import ItemReader, ReadOptions

TMS = morecantile.tms.get("WebMercatorQuad")


def _write(path: Path, seed: int) -> Path:
    """A 1024 px UTM raster of 10 m with a nodata corner and averaged overviews."""
    data = numpy.random.default_rng(seed).integers(1, 4000, (1, 1024, 1024)).astype("uint16")
    data[:, :300, :200] = 0
    profile = {"driver": "GTiff", "width": 1024, "height": 1024, "count": 1, "dtype": "uint16"}
    profile |= {"crs": CRS.from_epsg(32613), "transform": from_origin(680000, 4450000, 10, 10)}
    profile |= {"nodata": 0, "tiled": True, "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews([2, 4], Resampling.average)
    return path


def test_reads_of_one_layout_are_gathered_from_its_levels_and_equal_rio_tilers(
    tmp_path: Path,
) -> None:
    paths = [_write(tmp_path / f"b{i}.tif", i) for i in range(3)]  # one layout, three files
    bands = {f"b{i}": Band(f"b{i}", str(p), nodata=0) for i, p in enumerate(paths)}
    when = dt.datetime(2021, 7, 1, tzinfo=dt.UTC)
    item = Item("it", when, box(-180, -90, 180, 90), {}, bands)
    datasets = DatasetCache()
    reader = ItemReader(datasets)
    try:
        for z in (11, 12, 13, 14, 15):  # the 1/4 and 1/2 overviews, then full resolution
            tile = TMS.tile(-102.827, 40.134, z)
            grid = TileGrid(TMS, tile.x, tile.y, tile.z)
            for _ in range(2):
                got = reader.read(item, list(bands), grid, ReadOptions())
                assert got is not None
                for name, band in bands.items():
                    with Reader(band.href, tms=TMS) as src:
                        want = src.tile(tile.x, tile.y, tile.z).array[0]
                    assert numpy.array_equal(got[name].data, want.data)
                    mask = numpy.ma.getmaskarray(want)
                    assert numpy.array_equal(numpy.ma.getmaskarray(got[name]), mask)
        assert reader.sparse.gathered == 5 * 2 * 3  # every read
        assert len(reader.sparse.layouts) == 1
        assert len(datasets) > len(paths)  # overview levels kept open beside the files
    finally:
        datasets.close()


@pytest.mark.parametrize("method", ["bilinear", "cubic"])
def test_other_resamplings_are_rio_tilers_reads(tmp_path: Path, method: str) -> None:
    path = _write(tmp_path / "b.tif", 7)
    item = Item(
        "it",
        dt.datetime(2021, 7, 1, tzinfo=dt.UTC),
        box(-180, -90, 180, 90),
        {},
        {"b": Band("b", str(path), nodata=0)},
    )
    datasets = DatasetCache()
    reader = ItemReader(datasets)
    tile = TMS.tile(-102.827, 40.134, 13)
    grid = TileGrid(TMS, tile.x, tile.y, tile.z)
    try:
        got = reader.read(item, ["b"], grid, ReadOptions(reproject_method=method))
        assert got is not None
        with Reader(str(path), tms=TMS) as src:
            want = src.tile(tile.x, tile.y, tile.z, reproject_method=method).array[0]
        assert numpy.array_equal(got["b"].data, want.data)
        assert reader.sparse.gathered == 0
    finally:
        datasets.close()
