"""Issue 19: reads done as gathers (:mod:`tiler.engine.sparse`) equal rio-tiler's own, bit for bit.

Random grids (tiles of WebMercatorQuad, WGS1984Quad and a UTM matrix set, parts in
EPSG:3857, EPSG:4326 and UTM), zooms from a file's overviews to beyond its resolution,
resamplings (nearest is gathered, the others fall back), nodata kinds (a value, NaN, an
internal mask, an alpha band, an override) and source CRSs (UTM, WebMercator, EPSG:4326):
every read is done twice through an engine's :class:`SparseReads` (gathers where possible; with
``first_read_direct`` the first read is rio-tiler's, the second a gather) and both must equal
``Reader.tile`` / ``Reader.part`` on the same file: data (under the mask too) and mask.
The unit run draws a few dozen cases; the e2e sweep draws many more.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
import rasterio
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.transform import from_origin
from rasterio.warp import transform
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from tiler.engine.grids import PartGrid, TileGrid
from tiler.engine.sparse import SparseReads

#: a nodata override on the alpha file: rio-tiler says the nodata shadows the alpha band
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NodataShadowWarning")

CENTRE = (-103.19, 40.14)
UTM = CRS.from_epsg(32613)
MERCATOR = CRS.from_epsg(3857)
LONLAT = CRS.from_epsg(4326)


def _utm_tms() -> morecantile.TileMatrixSet:
    x, y = transform(LONLAT, UTM, [CENTRE[0]], [CENTRE[1]])
    side = 20 * 2**10  # 20 m pixels at zoom 6 with 256 px tiles... and other zooms
    left, top = round(x[0] / 20) * 20 - side / 2 + 3.7, round(y[0] / 20) * 20 + side / 2
    tms: morecantile.TileMatrixSet = morecantile.TileMatrixSet.custom(
        [left, top - side, left + side, top], ProjCRS.from_epsg(32613), minzoom=0, maxzoom=8
    )
    return tms


TMSS = {
    "WebMercatorQuad": morecantile.tms.get("WebMercatorQuad"),
    "WGS1984Quad": morecantile.tms.get("WGS1984Quad"),
    "utm": _utm_tms(),
}

#: name: (crs, pixel size in its units, dtype, bands, nodata, kind of mask)
FILES: dict[str, tuple[CRS, float, str, int, float | None, str]] = {
    "utm_uint16": (UTM, 20.0, "uint16", 1, 0, "value"),
    "utm_int16_two_bands": (UTM, 30.0, "int16", 2, -1, "value"),
    "utm_float32": (UTM, 20.0, "float32", 1, -9999.0, "value"),
    "utm_float32_nan": (UTM, 20.0, "float32", 1, math.nan, "nan"),
    "utm_uint8_mask": (UTM, 20.0, "uint8", 1, None, "mask"),
    "utm_uint8_alpha": (UTM, 20.0, "uint8", 4, None, "alpha"),
    "mercator_uint16": (MERCATOR, 25.0, "uint16", 1, 0, "value"),
    "lonlat_uint8": (LONLAT, 0.0002, "uint8", 1, 255, "value"),
}
SIZE = (520, 410)  # width, height: odd overview sizes at 1/8


def _write(path: Path, spec: tuple[CRS, float, str, int, float | None, str]) -> Path:
    crs, res, dtype, count, nodata, kind = spec
    width, height = SIZE
    x, y = transform(LONLAT, crs, [CENTRE[0]], [CENTRE[1]])
    left, top = x[0] - res * width / 2 + res / 3, y[0] + res * height / 2
    rng = numpy.random.default_rng(sorted(FILES).index(path.stem))
    data = rng.integers(1, 200, size=(count, height, width)).astype(dtype)
    rows, cols = numpy.ogrid[:height, :width]
    hole = (cols > 0.55 * width + 0.3 * rows) | ((rows - 200) ** 2 + (cols - 150) ** 2 < 900)
    profile: dict[str, Any] = {"driver": "GTiff", "width": width, "height": height}
    profile |= {"count": count, "dtype": dtype, "crs": crs}
    profile |= {"transform": from_origin(left, top, res, res), "tiled": True}
    profile |= {"blockxsize": 128, "blockysize": 128, "compress": "deflate"}
    if kind in ("value", "nan"):
        profile["nodata"] = nodata
        data[:, hole] = nodata
    if "float" in dtype:  # NaN inside the data whatever the nodata
        data[:, 50:60, 300:340] = math.nan
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        if kind == "alpha":
            dst.colorinterp = [
                ColorInterp.red,
                ColorInterp.green,
                ColorInterp.blue,
                ColorInterp.alpha,
            ]
            data[3] = numpy.where(hole, 0, 255)
        dst.write(data)
        if kind == "mask":
            dst.write_mask(numpy.where(hole, 0, 255).astype("uint8"))
        dst.build_overviews([2, 4, 8], Resampling.average)  # every level holds other values
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("read_properties")
    return {name: _write(folder / f"{name}.tif", spec) for name, spec in FILES.items()}


def _same(got: numpy.ma.MaskedArray, want: numpy.ma.MaskedArray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    assert numpy.array_equal(numpy.ma.getmaskarray(got), numpy.ma.getmaskarray(want))
    assert numpy.array_equal(got.data, want.data, equal_nan=got.dtype.kind == "f")


@st.composite
def reads(draw: st.DrawFn) -> dict[str, Any]:
    """A file, a grid over or across it, read options."""
    name = draw(st.sampled_from(sorted(FILES)))
    crs, res, dtype, count, _, _ = FILES[name]
    lon = CENTRE[0] + draw(st.floats(-0.08, 0.08))
    lat = CENTRE[1] + draw(st.floats(-0.05, 0.05))
    kwargs: dict[str, Any] = {}
    method = draw(st.sampled_from([None, "nearest", "nearest", "bilinear", "cubic"]))
    if method is not None:
        kwargs[draw(st.sampled_from(["reproject_method", "resampling_method"]))] = method
    if draw(st.integers(0, 4)) == 0:
        kwargs["nodata"] = draw(
            st.sampled_from([7, 150] + ([math.nan] if "float" in dtype else []))
        )
    indexes = draw(st.sampled_from([[1], list(range(1, count + 1))]))
    if draw(st.booleans()):
        tms_name = draw(st.sampled_from(sorted(TMSS)))
        tms = TMSS[tms_name]
        zooms = (0, 8) if tms_name == "utm" else (9, 16)  # 1/8 overview .. 4x the file's pixels
        z = draw(st.integers(*zooms))
        tile = tms.tile(lon, lat, z)
        size = draw(st.sampled_from([64, 256, 300]))
        grid: Any = TileGrid(tms, tile.x, tile.y, tile.z, size)
    else:
        dst = draw(st.sampled_from([MERCATOR, LONLAT, UTM]))
        half = draw(st.floats(0.002, 0.1))
        bbox = (lon - half, lat - half * 0.7, lon + half, lat + half * 0.7)
        width, height = draw(st.integers(16, 300)), draw(st.integers(16, 300))
        grid = PartGrid(bbox, LONLAT, dst, width, height)
    direct = draw(st.booleans())  # the first read of a layout onto a grid: rio-tiler's own
    return {"name": name, "grid": grid, "kwargs": kwargs, "indexes": indexes, "direct": direct}


def _tms(grid: Any) -> morecantile.TileMatrixSet:
    tms: morecantile.TileMatrixSet = grid.tms or TMSS["WebMercatorQuad"]
    return tms


def _oracle(path: Path, grid: Any, indexes: list[int], kwargs: dict[str, Any]) -> Any:
    """rio-tiler's own read of the grid (a new reader, nothing of the engine)."""
    with Reader(str(path), tms=getattr(grid, "tms", None) or TMSS["WebMercatorQuad"]) as src:
        if isinstance(grid, TileGrid):
            img = src.tile(
                grid.x, grid.y, grid.z, tilesize=grid.tilesize, indexes=indexes, **kwargs
            )
        else:
            img = src.part(
                grid.bbox,
                dst_crs=grid.dst_crs,
                bounds_crs=grid.bounds_crs,
                width=grid.width,
                height=grid.height,
                indexes=indexes,
                **kwargs,
            )
        return img.array


def _gatherable(spec: tuple[CRS, float, str, int, float | None, str], case: dict[str, Any]) -> bool:
    """Whether the second read must be a gather: reprojected, nearest, masked by a value."""
    crs, _, _, _, nodata, kind = spec
    grid, kwargs = case["grid"], case["kwargs"]
    dst = grid.tms.rasterio_crs if isinstance(grid, TileGrid) else grid.dst_crs
    value = kwargs.get("nodata", nodata)
    nearest = all(kwargs.get(k, "nearest") == "nearest" for k in kwargs if k != "nodata")
    plain = kind in ("value", "nan")  # masked by a value or NaN (an override too), no mask band
    return dst != crs and nearest and plain and value is not None


def _check(files: dict[str, Path], case: dict[str, Any]) -> None:
    note(repr(case))
    path, grid = files[case["name"]], case["grid"]
    indexes, kwargs = case["indexes"], case["kwargs"]
    try:
        want = _oracle(path, grid, indexes, kwargs)
    except TileOutsideBounds:
        with pytest.raises(TileOutsideBounds), Reader(str(path), tms=grid.tms) as src:
            grid.read(src, indexes, **kwargs)
        return
    cache = SparseReads()
    with (
        rasterio.open(path) as ds,
        Reader(
            str(path), dataset=ds, tms=getattr(grid, "tms", None) or TMSS["WebMercatorQuad"]
        ) as src,
    ):
        for _ in range(2):  # rio-tiler's read, then the gather (where it applies)
            with cache.bound():
                _same(grid.read(src, indexes, **dict(kwargs)), want)
    # the first read too when the file covers a small part of the grid
    assert (cache.gathered > 0) == _gatherable(FILES[case["name"]], case)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=reads())
def test_reads_equal_rio_tilers(files: dict[str, Path], case: dict[str, Any]) -> None:
    _check(files, case)


@pytest.mark.e2e
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=reads())
def test_reads_equal_rio_tilers_sweep(files: dict[str, Path], case: dict[str, Any]) -> None:
    _check(files, case)


def test_a_file_of_another_layout_is_not_gathered_with_the_first_ones_index(
    files: dict[str, Path],
) -> None:
    """Two layouts read onto one grid through one cache: each gathered from its own index."""
    tms = TMSS["WebMercatorQuad"]
    tile = tms.tile(*CENTRE, 13)
    grid = TileGrid(tms, tile.x, tile.y, tile.z, 256)
    cache = SparseReads()
    for name in ("utm_uint16", "utm_int16_two_bands", "utm_uint16", "utm_int16_two_bands"):
        want = _oracle(files[name], grid, [1], {})
        with Reader(str(files[name]), tms=tms) as src, cache.bound():
            _same(grid.read(src, [1]), want)
    assert cache.gathered == 4
    assert len(cache.layouts) == 2


def test_the_caches_are_bounded(files: dict[str, Path]) -> None:
    tms = TMSS["WebMercatorQuad"]
    cache = SparseReads(layouts=1, plans=3, plan_bytes=600_000)  # ~1 tile's (0.5 MB each)
    for z in range(10, 16):
        tile = tms.tile(*CENTRE, z)
        grid = TileGrid(tms, tile.x, tile.y, tile.z, 256)
        want = _oracle(files["utm_uint16"], grid, [1], {})
        with Reader(str(files["utm_uint16"]), tms=tms) as src, cache.bound():
            for _ in range(2):
                _same(grid.read(src, [1]), want)
    assert len(cache.layouts) == 1 and len(cache.plans) <= 3
    assert cache.plans.held <= 600_000
    assert cache.gathered >= 6  # the second read of each (both where the file is small)


def test_two_matrix_sets_of_the_same_repr_have_their_own_warped_indexes(
    files: dict[str, Path],
) -> None:
    """Custom tile matrix sets print alike ("Custom", same CRS): the same tile of each is its
    own grid."""
    x, y = transform(LONLAT, MERCATOR, [CENTRE[0]], [CENTRE[1]])
    side = 30 * 2**10
    sets = [
        morecantile.TileMatrixSet.custom(
            [x[0] - side / 2 + dx, y[0] - side / 2, x[0] + side / 2 + dx, y[0] + side / 2],
            ProjCRS.from_epsg(3857),
        )
        for dx in (0.0, 4321.0)
    ]
    assert repr(sets[0]) == repr(sets[1])
    cache = SparseReads()
    path = files["utm_uint16"]
    for tms in sets + sets:
        grid = TileGrid(tms, 1, 1, 2, 256)
        want = _oracle(path, grid, [1], {})
        with Reader(str(path), tms=tms) as src, cache.bound():
            _same(grid.read(src, [1]), want)
    assert cache.gathered == 4 and len(cache.plans) == 2
