"""Issue 22: a z0 tile of 1024 px over a 30 km collection took 12.6 s (a coordinate
transformation per output pixel, per file and band). Grids much larger than a file are now
warped once per raster layout on an index raster, and each file's values are gathered from
the source pixels it names: these tests hold those reads to rio-tiler's, bit for bit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
import rasterio
from fastapi.testclient import TestClient
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rio_tiler.constants import WGS84_CRS
from rio_tiler.io import Reader

from tiler.app import create_app
from tiler.engine import sparse, warped_index
from tiler.engine.grids import PartGrid, TileGrid
from tiler.settings import Settings

TMS = morecantile.tms.get("WebMercatorQuad")
UTM13 = CRS.from_epsg(32613)
#: (dtype, bands, nodata, overview factors)
FILES = {
    "uint16_one_band": ("uint16", 1, 0, [2, 4, 8]),
    "uint8_three_bands": ("uint8", 3, 255, [2, 4]),
    "float32_one_band": ("float32", 1, -9999.0, [2]),
}


def _write(path: Path, dtype: str, count: int, nodata: float, factors: list[int]) -> Path:
    """A 768 x 768 px raster of 40 m in UTM 13N around the demo, with nodata holes and
    averaged overviews (so every level holds other values)."""
    rng = numpy.random.default_rng(7)
    data = rng.integers(1, 250, size=(count, 768, 768)).astype(dtype)
    data[:, 100:140, 200:260] = nodata
    data[:, :, :5] = nodata
    profile = {"driver": "GTiff", "width": 768, "height": 768, "count": count, "dtype": dtype}
    profile |= {"crs": UTM13, "transform": from_origin(650000, 4460000, 40, 40)}
    profile |= {"nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews(factors, Resampling.average)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sparse")
    return {name: _write(folder / f"{name}.tif", *spec) for name, spec in FILES.items()}


@pytest.fixture
def gathers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """One entry per read answered by gathering (the sparse path)."""
    calls: list[int] = []
    real = sparse._gather

    def spy(*args: Any, **kwargs: Any) -> numpy.ma.MaskedArray:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sparse, "_gather", spy)
    yield calls


def _same(got: numpy.ma.MaskedArray, want: numpy.ma.MaskedArray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    assert numpy.array_equal(numpy.ma.getmaskarray(got), numpy.ma.getmaskarray(want))
    assert numpy.array_equal(got.filled(0), want.filled(0))
    assert numpy.ma.getmaskarray(want).sum() < want.size  # something to compare


def _tiles(zooms: range) -> list[morecantile.Tile]:
    """Tiles around the raster: over it, and across its edges."""
    out = set()
    for z in zooms:
        for lon, lat in ((-103.19, 40.14), (-103.24, 40.28), (-103.0, 40.02)):
            out.add(TMS.tile(lon, lat, z))
    return sorted(out, key=lambda t: (t.z, t.x, t.y))


#: rio-tiler's own read of the 3-band file (the oracle) takes 17 s at z3 and 80-190 s at
#: z0-z2 (the gathered read: 0.2-0.9 s), so it is compared from z4
FIRST_ZOOM = {"uint16_one_band": 0, "uint8_three_bands": 4, "float32_one_band": 0}


@pytest.mark.parametrize("name", list(FILES))
def test_low_zoom_tiles_are_gathered_and_equal_rio_tilers_reads(
    files: dict[str, Path], gathers: list[int], name: str
) -> None:
    path = files[name]
    count = FILES[name][1]
    for tile in _tiles(range(FIRST_ZOOM[name], 9)):
        grid = TileGrid(TMS, tile.x, tile.y, tile.z, 512)
        with Reader(str(path)) as src:
            want = src.tile(tile.x, tile.y, tile.z, tilesize=512).array
            got = grid.read(src, list(range(1, count + 1)))
        _same(got, want)
    assert gathers  # the file covers < 1/4 of the lowest zooms' tiles


def test_a_nodata_override_is_gathered_as_rio_tiler_reads_it(
    files: dict[str, Path], gathers: list[int]
) -> None:
    with Reader(str(files["uint16_one_band"])) as src:
        for tile in _tiles(range(2, 5)):
            grid = TileGrid(TMS, tile.x, tile.y, tile.z, 256)
            _same(grid.read(src, [1], nodata=7), src.tile(*tile, tilesize=256, nodata=7).array)
    assert gathers


@pytest.mark.parametrize(
    ("bbox", "crs"),
    [
        pytest.param((-180.0, -85.0, 180.0, 85.0), WGS84_CRS, id="the_globe_in_lonlat"),
        pytest.param((-110.0, 35.0, -95.0, 45.0), CRS.from_epsg(3857), id="a_region_in_mercator"),
    ],
)
def test_large_exports_are_gathered_and_equal_rio_tilers_parts(
    files: dict[str, Path], gathers: list[int], bbox: tuple[float, ...], crs: CRS
) -> None:
    grid = PartGrid((bbox[0], bbox[1], bbox[2], bbox[3]), WGS84_CRS, crs, 600, 400)
    for name in ("uint16_one_band", "float32_one_band"):  # the 3-band oracle: minutes
        count = FILES[name][1]
        with Reader(str(files[name])) as src:
            want = src.part(
                grid.bbox, dst_crs=crs, bounds_crs=WGS84_CRS, width=600, height=400
            ).array
            _same(grid.read(src, list(range(1, count + 1))), want)
    assert len(gathers) == 2


def test_tiles_the_file_covers_are_read_as_before(
    files: dict[str, Path], gathers: list[int]
) -> None:
    with Reader(str(files["uint16_one_band"])) as src:
        tile = TMS.tile(-103.19, 40.14, 12)
        _same(TileGrid(TMS, *tile, 256).read(src, [1]), src.tile(*tile, tilesize=256).array)
    assert gathers == []


def test_other_resampling_is_read_as_before(files: dict[str, Path], gathers: list[int]) -> None:
    with Reader(str(files["uint16_one_band"])) as src:
        got = TileGrid(TMS, 0, 0, 0, 256).read(src, [1], reproject_method="bilinear")
        want = src.tile(0, 0, 0, tilesize=256, reproject_method="bilinear").array
    assert numpy.array_equal(got.filled(0), want.filled(0))
    assert gathers == []


def test_a_z0_tile_of_1024_px_warps_once_per_raster_layout(
    demo_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's files share one layout: the world-sized warp is done once for the tile,
    not once per item and band (26 for an NDVI quality over 13 items)."""
    made: list[int] = []
    real = warped_index.IndexRaster.__init__

    def spy(self: Any, *args: Any) -> None:
        made.append(1)
        real(self, *args)

    monkeypatch.setattr(warped_index.IndexRaster, "__init__", spy)
    warps: list[int] = []
    warp = sparse.SparseReads._warp

    def counting(*args: Any) -> Any:
        warps.append(1)
        return warp(*args)

    monkeypatch.setattr(sparse.SparseReads, "_warp", staticmethod(counting))
    settings = Settings(collections=[demo_path], read_threads=2)
    with TestClient(create_app(settings)) as client:
        url = "/collections/demo/tiles/WebMercatorQuad/0/0/0.png"
        r = client.get(url, params={"tilesize": "1024", "quality": "(B8-B4)/(B8+B4)"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("x-items-skipped") is None
    assert int(r.headers["x-items-read"]) == 3  # every item of the small demo
    assert len(warps) == 1  # one grid, one layout: one warp for 3 items x 5 bands
    assert len(made) == 1  # the layout's index raster (the engine's own cache)


def test_low_zoom_tiles_are_the_same_bytes_as_without_sparse_reads(
    demo_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole mosaic (NDVI quality, raw npy output) of z0-z5 tiles over the demo."""
    settings = Settings(collections=[demo_path], read_threads=2)  # one app (cache) per mode
    params = {"quality": "(B8-B4)/(B8+B4)", "bands": "B4,B8,quality,_index"}
    tiles = [TMS.tile(-103.19, 40.14, z) for z in range(0, 6)]
    answers: dict[bool, list[bytes]] = {}
    for gathered in (True, False):  # False: every read is rio-tiler's own
        if not gathered:
            monkeypatch.setattr(sparse, "_eligible", lambda *args: False)
        with TestClient(create_app(settings)) as client:
            answers[gathered] = []
            for t in tiles:
                r = client.get(
                    f"/collections/demo/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy", params=params
                )
                assert r.status_code == 200, r.text[:300]
                answers[gathered].append(r.content)
    assert answers[True] == answers[False]
