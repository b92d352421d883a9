"""Public catalogues' data as it is (issue 21): 20 m SCL beside 10 m bands, per-item
radiometric offsets, duplicate granules and the built-in SCL / QA_PIXEL qualities, each
against the naive oracle."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
import rasterio
from rasterio.transform import from_origin
from support.oracle import days, naive_mosaic
from support.stac_files import CRS, ORIGIN, RES, SHARED, stac_item, write_cog, write_collection

from tiler.catalog.filters import make_search
from tiler.catalog.loaders import load_collection
from tiler.catalog.models import (
    QA_PIXEL_FLAGS,
    SCL_RANKS,
    qa_pixel_quality,
    scl_quality,
)
from tiler.engine.expression import parse
from tiler.engine.io import ReadOptions

WMQ = morecantile.tms.get("WebMercatorQuad")
SIZE = 64  # 10 m pixels; SCL has SIZE // 2 pixels of 20 m
COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
#: (id, datetime, processing baseline, x/y shift in 10 m pixels)
SCENES = [
    ("S2B_33TWK_20220115_0_L2A", "2022-01-15T10:00:00Z", "03.01", (5, 3)),
    ("S2A_33TWK_20220120_0_L2A", "2022-01-20T10:00:00Z", "03.01", (0, 0)),
    ("S2A_33TWK_20220120_1_L2A", "2022-01-20T10:00:00Z", "03.01", (0, 0)),  # duplicate
    ("S2B_33TWK_20220125_0_L2A", "2022-01-25T10:00:00Z", "04.00", (8, 0)),
    ("S2A_33TWK_20220130_0_L2A", "2022-01-30T10:00:00Z", "04.00", (3, 7)),
]


def _scene(root: Path, k: int, shift: tuple[int, int], baseline: str) -> dict[str, Path]:
    """Band files of one scene: 10 m uint16 reflectance (+1000 from baseline 04.00), 20 m SCL."""
    rng = numpy.random.default_rng(100 + (k if k != 2 else 1))  # the duplicate: same scene
    x0, y0 = ORIGIN[0] + shift[0] * RES, ORIGIN[1] - shift[1] * RES
    files = {}
    # blobs of classes on the 20 m grid, so that 10 m pixels share a class in 2 x 2 blocks
    scl = rng.choice(numpy.arange(12, dtype="uint8"), (SIZE // 2, SIZE // 2))
    scl[rng.random(scl.shape) < 0.5] = 4
    p = root / f"s{k}" / "SCL.tif"
    write_cog(p, scl, transform=from_origin(x0, y0, 2 * RES, 2 * RES), crs=CRS, nodata=0)
    files["SCL"] = p
    for name in COMMON:
        refl = rng.integers(100, 5000, (SIZE, SIZE)).astype("uint16")
        refl[rng.random(refl.shape) < 0.03] = 0  # nodata holes
        if k == 2 and name == "B04":  # the reprocessed duplicate differs in one band
            refl = numpy.where(refl > 0, refl + 1, 0).astype("uint16")
        if baseline >= "04.00":
            refl = numpy.where(refl > 0, refl + 1000, 0).astype("uint16")
        p = root / f"s{k}" / f"{name}.tif"
        write_cog(p, refl, transform=from_origin(x0, y0, RES, RES), crs=CRS, nodata=0)
        files[name] = p
    return files


def _item(
    root: Path, layout: str, item_id: str, when: str, baseline: str, files: dict[str, Path]
) -> dict[str, Any]:
    """A STAC item of the scene as Planetary Computer (B04 + common names) or Earth Search
    v1 (red, ..., scl) lays it out, with raster:bands scale and offset per item."""
    doc = stac_item(
        item_id,
        when,
        {name: (path, 0) for name, path in files.items()},
        root,
        {"s2:processing_baseline": baseline, "s2:generation_time": f"{when[:10]}-{item_id[-5]}"},
        collection=f"s2-{layout}",
    )
    assets = {}
    for name, asset in doc["assets"].items():
        if name == "SCL":
            asset["raster:bands"][0]["data_type"] = "uint8"
        else:
            offset = -0.1 if baseline >= "04.00" else 0.0
            asset["raster:bands"][0].update(data_type="uint16", scale=0.0001, offset=offset)
            key = name if layout == "pc" else COMMON[name]
            asset["eo:bands"] = [{"name": key, "common_name": COMMON[name]}]
        assets[name if layout == "pc" else COMMON.get(name, "scl")] = asset
    doc["assets"] = assets
    return doc


@pytest.fixture(scope="module")
def s2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same five scenes as Planetary Computer and as Earth Search v1 items."""
    root = tmp_path_factory.mktemp("s2")
    scenes = [
        (sid, when, bl, _scene(root, k, sh, bl)) for k, (sid, when, bl, sh) in enumerate(SCENES)
    ]
    out: dict[str, Any] = {"root": root}
    for layout in ("pc", "es"):
        items = [_item(root, layout, sid, when, bl, files) for sid, when, bl, files in scenes]
        out[layout] = write_collection(root / f"s2-{layout}.json", items)
    return out


def _files(item: Any) -> dict[str, str]:
    return {name: band.href for name, band in item.bands.items()}


def _unscaled(read: dict[str, numpy.ma.MaskedArray] | None, item: Any) -> Any:
    """The oracle's reading with the item's own raster:bands scale and offset applied."""
    if read is None:
        return None
    out = {}
    for name, arr in read.items():
        band = item.bands[name]
        if band.scale is None and band.offset is None:
            out[name] = arr
            continue
        data = arr.data.astype("float64") * (band.scale or 1.0) + (band.offset or 0.0)
        out[name] = numpy.ma.MaskedArray(data, mask=numpy.ma.getmaskarray(arr))
    return out


def _scl_rank(values: dict[str, numpy.ndarray], band: str = "SCL") -> numpy.ndarray:
    """The documented SCL ranking, by table (not by the expression)."""
    scl = values[band]
    out = numpy.full(scl.shape, numpy.nan)
    for value, rank in SCL_RANKS.items():
        out[scl == value] = rank
    return out


def _check(img: Any, data: numpy.ndarray, valid: numpy.ndarray) -> None:
    numpy.testing.assert_array_equal(~img.array.mask[0], valid)
    for i in range(data.shape[0]):
        numpy.testing.assert_array_equal(img.array.data[i][valid].astype("float64"), data[i][valid])


def _tiles(col: Any, zooms: list[int]) -> list[Any]:
    return [t for z in zooms for t in WMQ.tiles(*col.info().bounds, [z])]


def _equal_oracle(
    col: Any,
    m: Any,
    tile_reader: Any,
    quality: str,
    fn: Any,
    out: list[str],
    *,
    zooms: list[int],
    unscale: bool = False,
    resampling: str | None = None,
    sortby: str | None = None,
) -> int:
    """Every tile over the collection equals the oracle; returns the valid pixels checked."""
    search = make_search(sortby=sortby)
    expr = parse(quality, col.info().bands, col.info().aliases)
    kwargs = {"resampling_method": resampling} if resampling else {}
    options = ReadOptions(resampling_method=resampling, unscale=unscale)
    checked = 0
    for t in _tiles(col, zooms):
        items = m.items(t, search)
        if not items:
            continue
        img, _ = m.tile(t, expr.text, out, search, options)
        reads = [tile_reader(_files(it), t.x, t.y, t.z, **kwargs) for it in items]
        if unscale:
            reads = [_unscaled(r, it) for r, it in zip(reads, items, strict=True)]
        data, valid = naive_mosaic(reads, fn, list(expr.bands), out, days(items))
        _check(img, data, valid)
        checked += int(valid.sum())
    return checked


# ---------------------------------------------------------------------------------------
# mixed resolutions (issue 21 item 3)


@pytest.mark.parametrize(
    "resampling",
    [
        pytest.param(None, id="scl-20m-quality-10m-bands-nearest"),
        pytest.param("bilinear", id="scl-20m-quality-10m-bands-bilinear-both"),
    ],
)
def test_quality_from_a_20m_band_with_10m_outputs_equals_oracle(
    s2, mosaicker, tile_reader, resampling
):
    col = load_collection(s2["pc"])
    m = mosaicker(col, threads=3)
    out = ["B04", "B03", "B02", "SCL", "quality", "_index"]
    checked = _equal_oracle(
        col,
        m,
        tile_reader,
        scl_quality("SCL"),
        _scl_rank,
        out,
        zooms=[15, 16],
        resampling=resampling,
    )
    assert checked > 2000


def test_scl_is_read_at_20m_and_bands_at_10m(s2):
    col = load_collection(s2["pc"])
    bands = col.items[0].bands
    with rasterio.open(bands["SCL"].href) as scl, rasterio.open(bands["B04"].href) as red:
        assert scl.res == (2 * RES, 2 * RES) and red.res == (RES, RES)
        assert scl.bounds == red.bounds


# ---------------------------------------------------------------------------------------
# radiometry (issue 21 item 4)


def test_unscale_applies_each_items_own_offset_across_the_baseline_change(
    s2, mosaicker, tile_reader
):
    col = load_collection(s2["pc"])
    offsets = {it.id: it.bands["B02"].offset for it in col.items}
    assert set(offsets.values()) == {0.0, -0.1}  # both sides of 2022-01-25
    m = mosaicker(col, threads=3)
    out = ["B04", "B02", "quality", "_index"]
    checked = _equal_oracle(
        col, m, tile_reader, "-B02", lambda v: -v["B02"], out, zooms=[15, 16], unscale=True
    )
    assert checked > 2000


def test_unscaled_items_after_the_baseline_win_where_raw_numbers_would_not(s2, mosaicker):
    """-B02 (darkest blue): stored numbers are 1000 higher from 04.00, reflectances are not."""
    col = load_collection(s2["pc"])
    m = mosaicker(col, threads=3)
    late = [i for i, it in enumerate(col.items) if it.properties["s2:processing_baseline"] >= "04"]
    t = WMQ.tile(*_centre(col), 16)
    raw, _ = m.tile(t, "-B02", ["_index"])
    unscaled, _ = m.tile(t, "-B02", ["_index", "B02"], options=ReadOptions(unscale=True))
    won_raw = numpy.isin(raw.array.data[0][~raw.array.mask[0]], late)
    won_unscaled = numpy.isin(unscaled.array.data[0][~unscaled.array.mask[0]], late)
    # raw, a later item wins only where no earlier one has a value
    assert won_unscaled.mean() > won_raw.mean() + 0.2
    values = unscaled.array.data[1][~unscaled.array.mask[1]]
    assert values.dtype == numpy.float64 and values.min() > 0 and values.max() < 0.6


def _centre(col: Any) -> tuple[float, float]:
    w, s, e, n = col.info().bounds
    return ((w + e) / 2, (s + n) / 2)


# ---------------------------------------------------------------------------------------
# duplicates (issue 21 item 6)


def test_duplicate_granules_tie_to_the_first_id_whatever_the_file_order(s2, mosaicker, tmp_path):
    items = json.loads(Path(s2["pc"]).read_text())["features"]
    dupes = [it for it in items if "_20220120_" in it["id"]]
    assert (
        len(dupes) == 2 and dupes[0]["properties"]["datetime"] == dupes[1]["properties"]["datetime"]
    )
    out = ["B04", "quality", "_index"]
    results = []
    for order, name in ((dupes, "forward"), (dupes[::-1], "reversed")):
        for it in order:  # relative hrefs stay valid from a copy next to the original
            for asset in it["assets"].values():
                asset["href"] = str(Path(s2["root"]) / asset["href"])
        path = write_collection(tmp_path / f"{name}.json", json.loads(json.dumps(order)))
        col = load_collection(path)
        assert [it.id for it in col.items] == sorted(d["id"] for d in dupes)
        m = mosaicker(col)
        t = WMQ.tile(*_centre(col), 16)
        img, _ = m.tile(t, scl_quality("SCL"), out)
        results.append(img)
        valid = ~img.array.mask[0]
        assert valid.sum() > 1000
        assert (img.array.data[2][valid] == 0).all()  # the first id wins every tie
    numpy.testing.assert_array_equal(results[0].array.data, results[1].array.data)
    numpy.testing.assert_array_equal(results[0].array.mask, results[1].array.mask)


def test_sortby_chooses_which_duplicate_wins(s2, mosaicker, tile_reader):
    col = load_collection(s2["pc"])
    m = mosaicker(col, threads=3)
    search = make_search(sortby="-s2:generation_time")
    order = [it.id for it in m.items(WMQ.tile(*_centre(col), 16), search)]
    assert order.index("S2A_33TWK_20220120_1_L2A") < order.index("S2A_33TWK_20220120_0_L2A")
    out = ["B04", "quality", "_index"]
    checked = _equal_oracle(
        col,
        m,
        tile_reader,
        scl_quality("SCL"),
        _scl_rank,
        out,
        zooms=[16],
        sortby="-s2:generation_time",
    )
    assert checked > 1000


# ---------------------------------------------------------------------------------------
# the built-in qualities (issue 21 item 5)


def test_scl_quality_ranks_every_class_as_documented():
    expected = {0: None, 1: 1, 2: 6, 3: 4, 4: 9, 5: 9, 6: 9, 7: 7, 8: 3, 9: 2, 10: 5, 11: 8}
    expr = parse(scl_quality("SCL"), ["SCL"])
    values = numpy.arange(0, 256, dtype="float64")
    got = expr.evaluate({"SCL": values})
    for value in range(256):
        want = expected.get(value)
        if want is None:
            assert math.isnan(got[value]), value
        else:
            assert got[value] == want, value
    assert expr.upper_bound({"SCL": (0.0, math.inf)}) == 9.0


def _qa_rank(qa: int) -> float:
    """The documented QA_PIXEL ranking, from the bits in Python (not the expression)."""
    if qa & 1:
        return math.nan  # fill
    for bit, rank in ((3, 2), (1, 3), (4, 4), (2, 5), (5, 8)):
        if qa >> bit & 1:
            return float(rank)
    return 9.0 if qa >> 6 & 1 or qa >> 7 & 1 else 7.0


def test_qa_pixel_quality_tests_bits_exactly_for_every_16_bit_value():
    expr = parse(qa_pixel_quality("qa_pixel"), ["qa_pixel"])
    values = numpy.arange(0, 2**16, dtype="float64")
    got = expr.evaluate({"qa_pixel": values})
    want = numpy.array([_qa_rank(v) for v in range(2**16)])
    numpy.testing.assert_array_equal(got, want)
    assert [rank for _, rank in QA_PIXEL_FLAGS][0] is None
    # typical Landsat 8 values: clear land, clear water, high-confidence cloud, shadow, snow
    for value, rank in ((21824, 9), (21952, 9), (55052, 2), (23888, 4), (30048, 8), (1, None)):
        assert math.isnan(got[value]) if rank is None else got[value] == rank, value


@pytest.mark.parametrize(
    ("rel", "quality_band", "bands"),
    [
        pytest.param(
            "odc-stac/site2-2020_jun_jul-35MNM.geojson",
            "SCL",
            ["B04", "B03", "B02"],
            id="planetary-computer-s2-scl-bands-by-common-name",
        ),
        pytest.param(
            "rio-tiler-pds/S2A_29RKH_20200219_0_L2A.json",
            "scl",
            ["red", "green", "blue"],
            id="earth-search-v1-lowercase-scl",
        ),
        pytest.param(
            "odc-stac/S2A_28QCH_20200714_0_L2A.json",
            "SCL",
            ["B04", "B03", "B02"],
            id="earth-search-v0-no-common-names-b04-b03-b02",
        ),
        pytest.param(
            "stac-geoparquet/landsat-c2-l2-pc.json",
            "qa_pixel",
            ["red", "green", "blue"],
            id="planetary-computer-landsat-qa-pixel",
        ),
        pytest.param(
            "odc-stac/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json",
            "qa_pixel",
            ["red", "green", "blue"],
            id="usgs-landsat-qa-pixel",
        ),
    ],
)
def test_real_items_get_the_builtin_default_quality(rel, quality_band, bands):

    path = SHARED / "stac_items" / rel
    if not path.is_file():
        pytest.skip(f"shared STAC item {rel} not present")
    info = load_collection(path).info()
    default = info.default_render
    builder = scl_quality if quality_band.lower() == "scl" else qa_pixel_quality
    assert default["quality"] == builder(quality_band)
    assert default["bands"] == bands
    assert parse(default["quality"], info.bands).bands == (quality_band,)


def test_renders_with_a_quality_stay_the_default(s2, tmp_path):
    doc = json.loads(Path(s2["pc"]).read_text())
    doc["renders"] = {"ndvi": {"quality": "(nir-red)/(nir+red)", "bands": ["red", "nir", "SCL"]}}
    for it in doc["features"]:
        for asset in it["assets"].values():
            asset["href"] = str(Path(s2["root"]) / asset["href"])
    info = load_collection(
        write_collection(tmp_path / "r.json", doc["features"], renders=doc["renders"])
    ).info()
    assert info.default_render == doc["renders"]["ndvi"]
    # a render without a quality (titiler-style, as Planetary Computer's) does not hide SCL's
    titiler = {"natural": {"assets": ["visual"], "rescale": [[0, 255]]}}
    info = load_collection(
        write_collection(tmp_path / "t.json", doc["features"], renders=titiler)
    ).info()
    assert info.default_render["quality"] == scl_quality("SCL")
