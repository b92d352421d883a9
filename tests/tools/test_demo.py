"""Tests of the synthetic demo collection (tiler.tools.demo).

Property tests run on the small demo and, marked ``e2e``, on the full-size one (both
generated once per run, see conftest.py).
"""

from __future__ import annotations

import datetime as dt
import inspect
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

import tiler.tools.demo.create as create
import tiler.tools.demo.writing as writing
from tiler.tools.demo import (
    DEMO_COLLECTION_ID,
    DEMO_SCENES,
    DEMO_SIZE,
    DEMO_VERSION,
    create_demo,
    default_demo_dir,
    ensure_demo,
)
from tiler.tools.demo.grid import RES, Grid, demo_grid
from tiler.tools.demo.scenes import SCENES

BANDS = ["B2", "B3", "B4", "B8"]
MASK = "MSK_CLDPRB"
ASSETS = [*BANDS, MASK]
START = dt.datetime(2020, 7, 1, tzinfo=dt.UTC)
END = dt.datetime(2020, 9, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module", params=["small", pytest.param("full", marks=pytest.mark.e2e)])
def variant(request: pytest.FixtureRequest) -> str:
    """Which demo the property tests check: the small one, or the full one (e2e)."""
    return str(request.param)


@pytest.fixture(scope="module")
def demo_dir(variant: str, request: pytest.FixtureRequest) -> pathlib.Path:
    path = request.getfixturevalue(f"{variant}_demo")
    assert isinstance(path, pathlib.Path)
    return path


@pytest.fixture(scope="module")
def grid(variant: str, request: pytest.FixtureRequest) -> Grid:
    if variant == "full":
        return demo_grid()
    return demo_grid(request.getfixturevalue("small_demo_size"))


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


def full_area_utm(grid: Grid) -> Any:
    left, top = grid.left, grid.top
    size = grid.size * RES
    return box(left, top - size, left + size, top)


def read_all(directory: pathlib.Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_create_demo_returns_collection_file(demo_dir: pathlib.Path) -> None:
    assert (demo_dir / "demo.json").is_file()
    assert demo_dir.name == "demo"
    # No temporary directory is left next to the demo.
    assert [p.name for p in demo_dir.parent.iterdir()] == ["demo"]


def test_collection_layout(collection: dict[str, Any]) -> None:
    assert list(collection) == ["type", "features", "renders"]
    assert collection["type"] == "FeatureCollection"


def _render(title: str, quality: str, bands: list[str], top: int = 4500) -> dict[str, Any]:
    return {"title": title, "quality": quality, "bands": bands, "min": 0, "max": top}


def test_renders(collection: dict[str, Any]) -> None:
    renders = collection["renders"]
    assert list(renders) == ["best", "worst", "greenest", "false-color"]
    rgb, false_colour = ["B4", "B3", "B2"], ["B8", "B4", "B3"]
    assert renders == {
        "best": _render("Best pixel (least cloudy)", "-MSK_CLDPRB", rgb),
        "worst": _render("Worst pixel (cloudiest)", "MSK_CLDPRB", rgb),
        "greenest": _render("Greenest pixel (max NDVI)", "(B8-B4)/(B8+B4)", rgb),
        "false-color": _render("False colour, least cloudy", "-MSK_CLDPRB", false_colour, 5000),
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


def test_item_metadata(features: list[dict[str, Any]], grid: Grid) -> None:
    assert [f["id"] for f in features] == [scene.item_id for scene in SCENES]
    for feature in features:
        assert feature["stac_version"] == "1.0.0"
        props = feature["properties"]
        assert props["proj:epsg"] == 32613
        assert props["proj:shape"] == [grid.size, grid.size]
        assert props["proj:transform"] == [RES, 0.0, grid.left, 0.0, -RES, grid.top]
        for band, asset in feature["assets"].items():
            assert asset["href"] == f"{feature['id']}/{band}.tif"
            assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
            assert asset["roles"] == ["data"]
            (raster_band,) = asset["raster:bands"]
            assert raster_band["spatial_resolution"] == RES
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
                # Overviews down to one block: none for a demo of at most 512 pixels.
                assert bool(src.overviews(1)) == (src.width > 512)
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


def test_reflectance_is_plausible(
    variant: str, demo_dir: pathlib.Path, features: list[dict[str, Any]]
) -> None:
    clearest = min(features, key=lambda f: f["properties"]["eo:cloud_cover"])
    mask = read(demo_dir, clearest, MASK)
    clear = mask == 0
    values = {band: read(demo_dir, clearest, band)[clear].astype(np.float64) for band in BANDS}
    for band in BANDS:
        assert values[band].min() > 0
        assert 200 < np.median(values[band]) < 4500
    ndvi = (values["B8"] - values["B4"]) / (values["B8"] + values["B4"])
    assert ndvi.max() > 0.7  # irrigated crops
    if variant == "full":  # the river and the lake lie outside the small demo
        assert ndvi.min() < 0.0  # water
    assert np.percentile(ndvi, 50) < 0.5  # mostly dry land
    # Clouds are bright and whitish.
    cloudy = max(features, key=lambda f: f["properties"]["eo:cloud_cover"])
    dense = read(demo_dir, cloudy, MASK) >= 90
    for band in ("B2", "B3", "B4"):
        assert np.median(read(demo_dir, cloudy, band)[dense]) > 5000


def test_cloud_probability(
    variant: str,
    demo_dir: pathlib.Path,
    features: list[dict[str, Any]],
    masks: list[np.ndarray],
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
        zero += int(np.count_nonzero(mask == 0))
        positive += int(np.count_nonzero(valid & (mask > 0)))
        # Clear pixels are untouched by clouds; cloudy pixels are brighter. (In the
        # small demo, the least cloudy scenes hold only thin cloud edges and shadows.)
        dense = valid & (mask >= 50)
        if 0 < cover < 100 and (variant == "full" or dense.any()):
            blue = read(demo_dir, feature, "B2")
            assert np.median(blue[dense]) > 2 * np.median(blue[mask == 0])
    assert zero > 0.4 * (zero + positive)
    assert positive > 0.1 * (zero + positive)
    assert max(covers) >= 99.0
    assert sum(c < 5.0 for c in covers) >= 4
    assert sum(c > 60.0 for c in covers) >= 2


def test_partial_footprints(
    demo_dir: pathlib.Path,
    features: list[dict[str, Any]],
    masks: list[np.ndarray],
    grid: Grid,
) -> None:
    full = full_area_utm(grid)
    partial = 0
    for feature, mask in zip(features, masks, strict=True):
        valid = mask != 255
        for band in BANDS:
            assert np.array_equal(read(demo_dir, feature, band) != 0, valid)
        geometry = shape(transform_geom("EPSG:4326", "EPSG:32613", feature["geometry"]))
        valid_area = np.count_nonzero(valid) * RES**2
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
    tmp_path: pathlib.Path, small_demo: pathlib.Path, small_demo_size: int
) -> None:
    other = create_demo(tmp_path / "again", size=small_demo_size).parent
    again = read_all(other)
    assert again == read_all(small_demo)
    assert len(again) == 1 + 5 * len(SCENES)


def test_create_demo_is_idempotent(
    small_demo: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = small_demo / "demo.json"
    tif = next(small_demo.glob("*/B4.tif"))
    stamps = (collection.stat().st_mtime_ns, tif.stat().st_mtime_ns)

    def fail(*args: Any) -> None:
        raise AssertionError("the demo was generated again")

    monkeypatch.setattr(create, "generate", fail)
    assert create_demo(small_demo) == collection
    assert create_demo(small_demo, size=64, scenes=1) == collection
    assert ensure_demo(small_demo) == collection
    assert (collection.stat().st_mtime_ns, tif.stat().st_mtime_ns) == stamps


def test_interrupted_run_leaves_nothing(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(writing, "item", interrupt)
    with pytest.raises(KeyboardInterrupt):
        create_demo(tmp_path / "demo", size=64, scenes=2)
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
    create._commit(tmp, target)
    assert (target / "demo.json").read_text() == "{}"
    assert (target / "S2A_X_demo" / "B2.tif").read_bytes() == b"new"
    assert (target / "notes.txt").read_text() == "keep me"
    assert not tmp.exists()


def test_commit_into_missing_directory(tmp_path: pathlib.Path) -> None:
    tmp = tmp_path / ".demo.tmp-2"
    tmp.mkdir()
    (tmp / "demo.json").write_text("{}")
    create._commit(tmp, tmp_path / "demo")
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

    monkeypatch.setattr(create, "default_demo_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(create, "create_demo", fake_create)
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
    create._remove_stale_temporaries(tmp_path / "demo")
    assert not old.exists()
    assert young.exists()
    assert unrelated.exists()


# ---------------------------------------------------------------------- demo size


def test_full_demo_defaults() -> None:
    """``tiler demo`` / ``tiler serve`` call create_demo(directory): today's demo."""
    assert DEMO_SIZE == 1536
    assert DEMO_SCENES == len(SCENES) == 13
    params = inspect.signature(create_demo).parameters
    assert params["size"].default == DEMO_SIZE
    assert params["scenes"].default == DEMO_SCENES
    assert list(inspect.signature(ensure_demo).parameters) == ["directory"]
    assert demo_grid() == Grid(size=1536, left=638820.0, top=4460220.0)


def test_smaller_grids_share_the_centre() -> None:
    full = demo_grid()
    for size in (64, 256, 1000, 2048):
        grid = demo_grid(size)
        assert grid.left % 60.0 == 0.0 and grid.top % 60.0 == 0.0
        centre = (grid.left + grid.size * RES / 2, grid.top - grid.size * RES / 2)
        full_centre = (full.left + full.size * RES / 2, full.top - full.size * RES / 2)
        assert centre == pytest.approx(full_centre, abs=30.0)


def test_create_small_demo(tmp_path: pathlib.Path) -> None:
    collection = create_demo(tmp_path / "demo", size=64, scenes=2)
    features = json.loads(collection.read_text(encoding="utf-8"))["features"]
    assert [f["id"] for f in features] == [scene.item_id for scene in SCENES[:2]]
    for feature in features:
        assert feature["properties"]["proj:shape"] == [64, 64]
        for band in ASSETS:
            with rasterio.open(tmp_path / "demo" / feature["assets"][band]["href"]) as src:
                assert src.shape == (64, 64)
                assert src.transform == demo_grid(64).transform
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(
        ["demo.json", *(f["id"] for f in features)]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 100}, "multiple of 8"),
        ({"size": 56}, "multiple of 8"),
        ({"size": 2056}, "multiple of 8"),
        ({"size": 256.0}, "integer"),
        ({"scenes": 0}, "1..13"),
        ({"scenes": 14}, "1..13"),
        ({"scenes": True}, "1..13"),
    ],
)
def test_invalid_demo_parameters(
    tmp_path: pathlib.Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_demo(tmp_path / "demo", **kwargs)
    assert list(tmp_path.iterdir()) == []
