"""Raster extents: pixels an item cannot reach are known before reading it.

A tile at the edge of a collection's rasters has pixels no item can fill, so they never
hold the quality bound; once the files' extents are known (learned from their headers),
the mosaic stops reading there too, and stays exact.
"""

from __future__ import annotations

import datetime as dt

import numpy
import pytest
from rasterio.crs import CRS as RioCRS
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rio_tiler.io import Reader
from support.oracle import days
from support.stac_files import CRS, ORIGIN, RES, WMQ, stac_item, write_cog, write_collection

from tiler.catalog.loaders import load_collection
from tiler.engine.extents import ExtentCache, Raster, item_reach, reach
from tiler.engine.grids import TileGrid
from tiler.engine.method import QualityMosaicMethod

SIZE = 64


def _files(item):
    return {name: band.href for name, band in item.bands.items()}


@pytest.fixture(scope="module")
def clear_west(tmp_path_factory):
    """Three clear items (cloud 0 everywhere) on the same 64 x 64 grid, values = item."""
    root = tmp_path_factory.mktemp("clear")
    items = []
    transform = from_origin(*ORIGIN, RES, RES)
    for k in range(3):
        files = {}
        cld = numpy.zeros((SIZE, SIZE), "uint8")
        ref = numpy.full((SIZE, SIZE), 100 + k, "uint16")
        for name, arr, nodata in (("cld", cld, 255), ("ref", ref, 0)):
            path = root / f"i{k}" / f"{name}.tif"
            write_cog(path, arr, transform=transform, crs=CRS, nodata=nodata)
            files[name] = (path, nodata)
        when = dt.datetime(2020, 7, 1 + k, tzinfo=dt.UTC).isoformat()
        it = stac_item(f"i{k}", when, files, root)
        it["assets"]["cld"]["raster:bands"][0]["data_type"] = "uint8"
        it["assets"]["ref"]["raster:bands"][0]["data_type"] = "uint16"
        items.append(it)
    return load_collection(write_collection(root / "clear.json", items))


def _edge_tile(catalog):
    """A z16 tile that the rasters cover only in part."""
    w, s, e, n = catalog.info().bounds
    for t in WMQ.tiles(w, s, e, n, [16]):
        tw, ts, te, tn = WMQ.bounds(t)
        if tw < e < te:
            return t
    raise AssertionError("no tile across the east edge")


def _raster(transform=None, size=SIZE):
    return Raster(
        RioCRS.from_user_input(CRS), transform or from_origin(*ORIGIN, RES, RES), size, size
    )


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="nearest"),
        pytest.param({"resampling_method": "bilinear", "reproject_method": "cubic"}, id="kernels"),
    ],
)
def test_reach_is_exactly_the_pixels_a_read_of_the_file_fills(clear_west, options):
    """cld is 0 everywhere and has no nodata inside: the pixels a read fills are exactly
    those inside the raster."""
    t = _edge_tile(clear_west)
    grid = TileGrid(WMQ, t.x, t.y, t.z)
    href = clear_west.items[0].bands["cld"].href
    with Reader(href, tms=WMQ) as src:
        filled = ~src.tile(t.x, t.y, t.z, **options).array.mask[0]
    where = reach(grid, _raster(), options)
    assert where is not None and 0 < where.sum() < where.size
    numpy.testing.assert_array_equal(where, filled)


def test_reach_is_all_inside_and_nothing_far_away(clear_west):
    w, s, e, n = clear_west.info().bounds
    inside = next(t for t in WMQ.tiles(w, s, e, n, [19]) if _within(WMQ.bounds(t), (w, s, e, n)))
    assert reach(TileGrid(WMQ, inside.x, inside.y, inside.z), _raster(), {}) is None
    far = _raster(from_origin(ORIGIN[0] + 50_000, ORIGIN[1], RES, RES))
    t = _edge_tile(clear_west)
    assert not reach(TileGrid(WMQ, t.x, t.y, t.z), far, {}).any()


def _within(inner, outer):
    pad = 0.0005
    return (
        inner[0] > outer[0] + pad
        and inner[1] > outer[1] + pad
        and inner[2] < outer[2] - pad
        and inner[3] < outer[3] - pad
    )


def test_reach_makes_no_claim_without_known_rasters(clear_west):
    t = _edge_tile(clear_west)
    grid = TileGrid(WMQ, t.x, t.y, t.z)
    cache = ExtentCache()
    item = clear_west.items[0]
    assert item_reach(item, ["cld"], grid, cache, {}, {}) is None
    far = from_origin(ORIGIN[0] + 50_000, ORIGIN[1], RES, RES)
    cache.learn(item.bands["cld"].href, RioCRS.from_user_input(CRS), far, SIZE, SIZE)
    assert item_reach(item, ["cld", "ref"], grid, cache, {}, {}) is None  # ref unknown
    where = item_reach(item, ["cld"], grid, cache, {}, {})
    assert where is not None and not where.any()  # a raster far away reaches no pixel


def test_the_extent_cache_is_bounded():
    cache = ExtentCache(size=2)
    crs = RioCRS.from_epsg(4326)
    for k in range(3):
        cache.learn(f"f{k}", crs, from_origin(0, 1, 0.1, 0.1), 10, 10)
    assert len(cache) == 2 and cache.get("f0") is None and cache.get("f2") is not None


def test_can_change_needs_an_undecided_pixel_within_reach():
    method = QualityMosaicMethod(upper_bound=0.0)
    assert method.can_change(5)  # nothing decided
    quality = numpy.ma.MaskedArray(numpy.array([[0.0, -3.0]]), mask=[[False, False]])
    method.decide(quality, 1)
    assert method.can_change(2)  # the right pixel is below the bound
    assert not method.can_change(2, numpy.array([[True, False]]))  # left one settled
    assert method.can_change(0, numpy.array([[True, False]]))  # an earlier item wins ties
    assert not method.can_change(0, numpy.array([[False, False]]))  # reaches nothing


def test_an_edge_tile_stops_early_once_extents_are_known(
    clear_west, mosaicker, oracle, tile_reader
):
    t = _edge_tile(clear_west)
    m = mosaicker(clear_west, threads=1)
    out = ["ref", "quality", "_index"]
    cold, cold_stats = m.tile(t, "-cld", out)
    warm, warm_stats = m.tile(t, "-cld", out)
    # cold: the east pixels never hold the bound and the other extents are unknown
    assert cold_stats.read == 3 and not cold_stats.exited_early
    # warm: the item read first settles every pixel the others can reach
    assert warm_stats.read == 1 and warm_stats.exited_early
    items = clear_west.items
    reads = [tile_reader(_files(it), t.x, t.y, t.z) for it in items]
    data, valid = oracle(reads, lambda v: -v["cld"], ["cld"], out, days(items))
    for img in (cold, warm):
        numpy.testing.assert_array_equal(~img.array.mask[0], valid)
        for i in range(len(out)):
            numpy.testing.assert_array_equal(img.array.data[i][valid], data[i][valid])
    assert valid.any() and not valid.all()


@pytest.mark.parametrize("zoom", [11, 12, 13, 14])
def test_reach_equals_the_filled_pixels_when_overviews_are_read(tmp_path, zoom):
    """A 1024 px COG with overviews, no nodata: at low zooms rio-tiler reads an overview;
    the pixels it fills at the raster's edges are still exactly the reach."""
    path = tmp_path / "big.tif"
    transform = from_origin(*ORIGIN, RES, RES)
    write_cog(path, numpy.ones((1024, 1024), "uint8"), transform=transform, crs=CRS)
    raster = Raster(RioCRS.from_user_input(CRS), transform, 1024, 1024)
    with Reader(str(path), tms=WMQ) as src:
        w, s, e, n = transform_bounds(CRS, "EPSG:4326", *src.bounds, densify_pts=21)
        checked = 0
        for t in WMQ.tiles(w, s, e, n, [zoom]):
            tw, ts, te, tn = WMQ.bounds(t)
            if tw < w < te or tw < e < te or ts < s < tn or ts < n < tn:  # across an edge
                filled = ~src.tile(t.x, t.y, t.z).array.mask[0]
                where = reach(TileGrid(WMQ, t.x, t.y, t.z), raster, {})
                where = numpy.ones_like(filled) if where is None else where
                numpy.testing.assert_array_equal(where, filled)
                checked += 1
    assert checked >= 3
