"""Tests of the synthetic demo collection (tiler.demo)."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import transform_geom
from shapely.geometry import Point, box, shape

import tiler.demo as demo
from tiler.demo import (
    DEMO_COLLECTION_ID,
    DEMO_VERSION,
    create_demo,
    default_demo_dir,
    ensure_demo,
)

BANDS = ["B2", "B3", "B4", "B8"]
MASK = "MSK_CLDPRB"
ASSETS = [*BANDS, MASK]
START = dt.datetime(2020, 7, 1, tzinfo=dt.UTC)
END = dt.datetime(2020, 9, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = create_demo(tmp_path_factory.mktemp("demo-a") / "demo")
    return path.parent


@pytest.fixture(scope="module")
def collection(demo_dir: pathlib.Path) -> dict[str, Any]:
    return json.loads((demo_dir / "demo.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def features(collection: dict[str, Any]) -> list[dict[str, Any]]:
    return collection["features"]


@pytest.fixture(scope="module")
def masks(demo_dir: pathlib.Path, features: list[dict[str, Any]]) -> list[np.ndarray]:
    return [read(demo_dir, f, MASK) for f in features]


def read(directory: pathlib.Path, feature: dict[str, Any], band: str) -> np.ndarray:
    with rasterio.open(directory / feature["assets"][band]["href"]) as src:
        return src.read(1)


def full_area_utm() -> Any:
    left, top = demo._LEFT, demo._TOP
    size = demo._SIZE * demo._RES
    return box(left, top - size, left + size, top)


def test_create_demo_returns_collection_file(demo_dir: pathlib.Path) -> None:
    assert (demo_dir / "demo.json").is_file()
    assert demo_dir.name == "demo"
    # No temporary directory is left next to the demo.
    assert [p.name for p in demo_dir.parent.iterdir()] == ["demo"]


def test_collection_layout(collection: dict[str, Any]) -> None:
    assert list(collection) == ["type", "features", "renders"]
    assert collection["type"] == "FeatureCollection"


def test_renders(collection: dict[str, Any]) -> None:
    renders = collection["renders"]
    assert list(renders) == ["best", "worst", "greenest", "false-color"]
    assert renders["best"] == {
        "title": "Best pixel (least cloudy)",
        "quality": "-MSK_CLDPRB",
        "bands": ["B4", "B3", "B2"],
        "min": 0,
        "max": 4500,
    }
    assert renders["worst"]["quality"] == "MSK_CLDPRB"
    assert renders["worst"]["bands"] == ["B4", "B3", "B2"]
    assert renders["greenest"]["quality"] == "(B8-B4)/(B8+B4)"
    assert renders["false-color"] == {
        "title": "False colour, least cloudy",
        "quality": "-MSK_CLDPRB",
        "bands": ["B8", "B4", "B3"],
        "min": 0,
        "max": 5000,
    }


def test_items_in_date_range(features: list[dict[str, Any]]) -> None:
    assert len(features) >= 12
    times = []
    for feature in features:
        text = feature["properties"]["datetime"]
        assert text.endswith("Z")
        when = dt.datetime.fromisoformat(text)
        assert START <= when < END
        assert when.hour == 17
        times.append(when)
    assert times == sorted(times)
    assert len({f["id"] for f in features}) == len(features)
    platforms = [f["properties"]["platform"] for f in features]
    assert set(platforms) == {"sentinel-2a", "sentinel-2b"}
    assert all(a != b for a, b in zip(platforms, platforms[1:], strict=False))


def test_items_load_with_pystac(features: list[dict[str, Any]]) -> None:
    for feature in features:
        item = pystac.Item.from_dict(feature)
        assert item.collection_id == DEMO_COLLECTION_ID
        assert item.id.endswith("_demo")
        assert set(item.assets) == set(ASSETS)
        assert item.ext.has("eo")
        assert item.ext.has("proj")
        assert item.ext.has("raster")
        assert item.properties["constellation"] == "sentinel-2"
        assert item.ext.proj.crs_string == "EPSG:32613"


def test_item_metadata(features: list[dict[str, Any]]) -> None:
    for feature in features:
        assert feature["stac_version"] == "1.0.0"
        props = feature["properties"]
        assert props["proj:epsg"] == 32613
        assert props["proj:shape"] == [demo._SIZE, demo._SIZE]
        for band, asset in feature["assets"].items():
            assert asset["href"] == f"{feature['id']}/{band}.tif"
            assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
            assert asset["roles"] == ["data"]
            (raster_band,) = asset["raster:bands"]
            assert raster_band["spatial_resolution"] == demo._RES
            if band == MASK:
                assert raster_band["nodata"] == 255
                assert raster_band["data_type"] == "uint8"
            else:
                assert raster_band["nodata"] == 0
                assert raster_band["data_type"] == "uint16"
            (eo_band,) = asset["eo:bands"]
            assert eo_band["name"] == band
        common = {b: feature["assets"][b]["eo:bands"][0]["common_name"] for b in BANDS}
        assert common == {"B2": "blue", "B3": "green", "B4": "red", "B8": "nir"}


def test_assets_are_cogs(demo_dir: pathlib.Path, features: list[dict[str, Any]]) -> None:
    for feature in features:
        props = feature["properties"]
        for band, asset in feature["assets"].items():
            path = demo_dir / asset["href"]
            assert path.is_file()
            with path.open("rb") as f:
                assert b"LAYOUT=IFDS_BEFORE_DATA" in f.read(512)
            with rasterio.open(path) as src:
                assert src.driver == "GTiff"
                assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                assert src.compression is not None
                assert src.compression.name == "deflate"
                assert src.is_tiled
                assert src.block_shapes == [(512, 512)]
                assert src.overviews(1)
                assert src.count == 1
                assert src.crs.to_epsg() == 32613
                assert list(src.shape) == props["proj:shape"]
                assert list(src.transform)[:6] == props["proj:transform"]
                if band == MASK:
                    assert src.dtypes[0] == "uint8"
                    assert src.nodata == 255
                else:
                    assert src.dtypes[0] == "uint16"
                    assert src.nodata == 0


def test_reflectance_is_plausible(demo_dir: pathlib.Path, features: list[dict[str, Any]]) -> None:
    clearest = min(features, key=lambda f: f["properties"]["eo:cloud_cover"])
    mask = read(demo_dir, clearest, MASK)
    clear = mask == 0
    values = {band: read(demo_dir, clearest, band)[clear].astype(np.float64) for band in BANDS}
    for band in BANDS:
        assert values[band].min() > 0
        assert 200 < np.median(values[band]) < 4500
    ndvi = (values["B8"] - values["B4"]) / (values["B8"] + values["B4"])
    assert ndvi.max() > 0.7  # irrigated crops
    assert ndvi.min() < 0.0  # water
    assert np.percentile(ndvi, 50) < 0.5  # mostly dry land
    # Clouds are bright and whitish.
    cloudy = max(features, key=lambda f: f["properties"]["eo:cloud_cover"])
    dense = read(demo_dir, cloudy, MASK) >= 90
    for band in ("B2", "B3", "B4"):
        assert np.median(read(demo_dir, cloudy, band)[dense]) > 5000


def test_cloud_probability(
    demo_dir: pathlib.Path, features: list[dict[str, Any]], masks: list[np.ndarray]
) -> None:
    covers = []
    zero = positive = 0
    for feature, mask in zip(features, masks, strict=True):
        valid = mask != 255
        assert valid.any()
        assert mask[valid].max() <= 100
        cover = 100.0 * np.count_nonzero(mask[valid] > 0) / np.count_nonzero(valid)
        assert feature["properties"]["eo:cloud_cover"] == pytest.approx(cover, abs=0.01)
        covers.append(cover)
        zero += np.count_nonzero(mask == 0)
        positive += np.count_nonzero(valid & (mask > 0))
        # Clear pixels are untouched by clouds; cloudy pixels are brighter.
        if 0 < cover < 100:
            blue = read(demo_dir, feature, "B2")
            assert np.median(blue[valid & (mask >= 50)]) > 2 * np.median(blue[mask == 0])
    assert zero > 0.4 * (zero + positive)
    assert positive > 0.1 * (zero + positive)
    assert max(covers) >= 99.0
    assert sum(c < 5.0 for c in covers) >= 4
    assert sum(c > 60.0 for c in covers) >= 2


def test_partial_footprints(
    demo_dir: pathlib.Path, features: list[dict[str, Any]], masks: list[np.ndarray]
) -> None:
    full = full_area_utm()
    partial = 0
    for feature, mask in zip(features, masks, strict=True):
        valid = mask != 255
        for band in BANDS:
            assert np.array_equal(read(demo_dir, feature, band) != 0, valid)
        geometry = shape(transform_geom("EPSG:4326", "EPSG:32613", feature["geometry"]))
        valid_area = np.count_nonzero(valid) * demo._RES**2
        assert geometry.area == pytest.approx(valid_area, rel=0.01)
        assert geometry.difference(full.buffer(1.0)).area < 1.0
        west, south, east, north = feature["bbox"]
        lonlat = shape(feature["geometry"])
        assert lonlat.is_valid
        assert lonlat.bounds == pytest.approx((west, south, east, north))
        if valid.all():
            assert lonlat.contains(Point(-103.19, 40.14))
        if not valid.all():
            partial += 1
            assert geometry.area < 0.9 * full.area
        else:
            assert geometry.area == pytest.approx(full.area, rel=1e-4)
    assert partial >= 1


def test_every_pixel_clear_somewhere(masks: list[np.ndarray]) -> None:
    stack = np.stack(masks)
    covered = (stack != 255).any(axis=0)
    assert covered.all()
    best = np.where(stack == 255, 255, stack).min(axis=0)
    assert np.count_nonzero(best[covered]) == 0


def test_deterministic(
    tmp_path: pathlib.Path, demo_dir: pathlib.Path, features: list[dict[str, Any]]
) -> None:
    other = create_demo(tmp_path / "again").parent
    assert (other / "demo.json").read_bytes() == (demo_dir / "demo.json").read_bytes()
    feature = next(f for f in features if 10 < f["properties"]["eo:cloud_cover"] < 90)
    for band in ASSETS:
        assert np.array_equal(read(other, feature, band), read(demo_dir, feature, band))


def test_create_demo_is_idempotent(demo_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collection = demo_dir / "demo.json"
    tif = next(demo_dir.glob("*/B4.tif"))
    stamps = (collection.stat().st_mtime_ns, tif.stat().st_mtime_ns)

    def fail(directory: pathlib.Path) -> None:
        raise AssertionError("the demo was generated again")

    monkeypatch.setattr(demo, "_generate", fail)
    assert create_demo(demo_dir) == collection
    assert ensure_demo(demo_dir) == collection
    assert (collection.stat().st_mtime_ns, tif.stat().st_mtime_ns) == stamps


def test_interrupted_run_leaves_nothing(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_item", interrupt)
    with pytest.raises(KeyboardInterrupt):
        create_demo(tmp_path / "demo")
    assert list(tmp_path.iterdir()) == []


def test_commit_into_existing_directory(tmp_path: pathlib.Path) -> None:
    tmp = tmp_path / ".demo.tmp-1"
    (tmp / "S2A_X_demo").mkdir(parents=True)
    (tmp / "S2A_X_demo" / "B2.tif").write_bytes(b"new")
    (tmp / "S2B_Y_demo").mkdir()
    (tmp / "demo.json").write_text("{}")
    target = tmp_path / "demo"
    (target / "S2B_Y_demo").mkdir(parents=True)  # left by a concurrent run
    (target / "notes.txt").write_text("keep me")
    demo._commit(tmp, target)
    assert (target / "demo.json").read_text() == "{}"
    assert (target / "S2A_X_demo" / "B2.tif").read_bytes() == b"new"
    assert (target / "notes.txt").read_text() == "keep me"
    assert not tmp.exists()


def test_commit_into_missing_directory(tmp_path: pathlib.Path) -> None:
    tmp = tmp_path / ".demo.tmp-2"
    tmp.mkdir()
    (tmp / "demo.json").write_text("{}")
    demo._commit(tmp, tmp_path / "demo")
    assert (tmp_path / "demo" / "demo.json").read_text() == "{}"
    assert not tmp.exists()


def test_default_demo_dir() -> None:
    path = default_demo_dir()
    assert path.name == f"demo-v{DEMO_VERSION}"
    assert "qualitymosaic" in path.parts


def test_ensure_demo_uses_default_dir(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[pathlib.Path] = []

    def fake_create(directory: pathlib.Path) -> pathlib.Path:
        calls.append(directory)
        return directory / "demo.json"

    monkeypatch.setattr(demo, "default_demo_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(demo, "create_demo", fake_create)
    assert ensure_demo() == tmp_path / "cache" / "demo.json"
    assert ensure_demo(tmp_path / "x") == tmp_path / "x" / "demo.json"
    assert calls == [tmp_path / "cache", tmp_path / "x"]


def test_stale_temporaries_are_removed(tmp_path: pathlib.Path) -> None:
    old = tmp_path / ".demo.tmp-old"
    young = tmp_path / ".demo.tmp-young"
    unrelated = tmp_path / ".other.tmp-old"
    for path in (old, young, unrelated):
        path.mkdir()
        (path / "B2.tif").write_bytes(b"x")
    for path in (old, unrelated):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    demo._remove_stale_temporaries(tmp_path / "demo")
    assert not old.exists()
    assert young.exists()
    assert unrelated.exists()
