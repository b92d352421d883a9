"""Loading collections: every file format, the shared real STAC items, bad files."""

from __future__ import annotations

import copy
import gc
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import rasterio
from shapely.geometry import box, shape

import tiler.catalog.loaders as loaders_module
from tiler.catalog.loaders import load_collection, load_collections
from tiler.catalog.models import Band
from tiler.errors import CollectionLoadError

SHARED_ITEMS = Path(__file__).resolve().parents[3] / "shared" / "data" / "stac_items"


def _remote_item(item_id: str, when: str = "2021-01-01T00:00:00Z", **kw: Any) -> dict[str, Any]:
    """A STAC item with remote single-band assets (never opened while loading)."""
    lon, lat = kw.pop("at", (10.0, 45.0))
    ring = [[lon, lat], [lon + 1, lat], [lon + 1, lat + 1], [lon, lat + 1], [lon, lat]]
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [lon, lat, lon + 1, lat + 1],
        "properties": {"datetime": when, **kw.pop("properties", {})},
        "links": [],
        "assets": {
            "B04": {
                "href": f"https://example.com/{item_id}/B04.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001}],
            }
        },
    }
    item.update(kw)
    return item


def _write_fc(path: Path, items: list[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items, **extra}))
    return path


def _absolute(items: list[dict[str, Any]], root: Path, to: Path) -> list[dict[str, Any]]:
    """Copies of items whose relative hrefs (against ``root``) are relative to ``to``."""
    out = copy.deepcopy(items)
    for it in out:
        for asset in it["assets"].values():
            asset["href"] = os.path.relpath(root / asset["href"], to)
    return out


def _summary(col) -> list[tuple]:
    return [
        (
            it.id,
            it.datetime,
            it.geometry.wkb,
            {k: v for k, v in it.properties.items() if k != "datetime"},
            it.bands,
        )
        for it in col.items
    ]


# ---------------------------------------------------------------------------------------
# formats


def _as_feature_collection(items, root, tmp):
    return _write_fc(tmp / "c.json", _absolute(items, root, tmp))


def _as_ndjson(items, root, tmp):
    path = tmp / "c.ndjson"
    path.write_text("".join(json.dumps(it) + "\n" for it in _absolute(items, root, tmp)))
    return path


def _as_ndjson_without_suffix(items, root, tmp):
    path = tmp / "c.json"
    path.write_text("\n".join(json.dumps(it) for it in _absolute(items, root, tmp)))
    return path


def _as_array(items, root, tmp):
    path = tmp / "c.json"
    path.write_text(json.dumps(_absolute(items, root, tmp), indent=1))
    return path


def _as_stac_collection(items, root, tmp):
    links = []
    for it in items:
        folder = tmp / "items" / it["id"]
        folder.mkdir(parents=True)
        # STAC: relative asset hrefs are relative to the item's own file
        (folder / "item.json").write_text(json.dumps(_absolute([it], root, folder)[0]))
        links.append({"rel": "item", "href": f"./items/{it['id']}/item.json"})
    doc = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "test",
        "description": "linked items",
        "license": "proprietary",
        "extent": {},
        "links": [{"rel": "root", "href": "./c.json"}, *links],
    }
    path = tmp / "c.json"
    path.write_text(json.dumps(doc))
    return path


def _as_geoparquet(items, root, tmp):
    sga = pytest.importorskip("stac_geoparquet.arrow")
    path = tmp / "c.parquet"
    sga.to_parquet(sga.parse_stac_items_to_arrow(_absolute(items, root, tmp)), path)
    return path


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(_as_feature_collection, id="feature-collection"),
        pytest.param(_as_ndjson, id="ndjson"),
        pytest.param(_as_ndjson_without_suffix, id="ndjson-detected-without-suffix"),
        pytest.param(_as_array, id="json-array-of-items"),
        pytest.param(_as_stac_collection, id="stac-collection-item-links-relative-to-item"),
        pytest.param(_as_geoparquet, id="stac-geoparquet"),
    ],
)
def test_every_format_loads_the_same_items(synthetic, tmp_path, write):
    reference = load_collection(synthetic["path"])
    path = write(synthetic["items"], synthetic["root"], tmp_path)
    col = load_collection(path)
    assert col.id == "test"
    assert _summary(col) == _summary(reference)
    assert col.bands == reference.bands
    assert all(Path(b.href).is_file() for it in col.items for b in it.bands.values())


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(_as_feature_collection, id="feature-collection"),
        pytest.param(_as_ndjson, id="ndjson"),
        pytest.param(_as_stac_collection, id="stac-collection"),
    ],
)
def test_item_stac_is_the_original_document(synthetic, tmp_path, write):
    path = write(synthetic["items"], synthetic["root"], tmp_path)
    if write is _as_stac_collection:
        files = (tmp_path / "items").glob("*/item.json")
        expected = {f.parent.name: json.loads(f.read_text()) for f in files}
    else:
        items = _absolute(synthetic["items"], synthetic["root"], tmp_path)
        expected = {it["id"]: it for it in items}
    col = load_collection(path)
    assert {it.id: it.stac for it in col.items} == expected
    assert col.items[0].stac is not col.items[0].stac  # a fresh copy: callers may change it


def test_geoparquet_keeps_properties_and_drops_schema_nulls(tmp_path):
    sga = pytest.importorskip("stac_geoparquet.arrow")
    items = [
        _remote_item("a", properties={"eo:cloud_cover": 5.0, "platform": "s2a"}),
        _remote_item("b", "2021-01-02T00:00:00.250Z", properties={"platform": "s2b"}),
    ]
    path = tmp_path / "c.geoparquet"
    sga.to_parquet(sga.parse_stac_items_to_arrow(items), path)
    col = load_collection(path)
    assert [it.id for it in col.items] == ["a", "b"]
    assert "eo:cloud_cover" not in col.items[1].properties  # not None: absent, as in JSON
    assert col.items[0].properties["eo:cloud_cover"] == 5.0
    assert col.items[1].datetime.microsecond == 250000
    assert col.items[0].bands["B04"] == Band(
        "B04", "https://example.com/a/B04.tif", 1, 0.0, 0.0001, None, "uint16"
    )


@pytest.mark.parametrize(
    "chunk",
    [
        pytest.param(3, id="vectorised-polygons-per-chunk"),
        pytest.param(8, id="2d-and-3d-mixed-one-by-one"),
    ],
)
def test_footprints_are_the_geojson_shapes(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(loaders_module, "_CHUNK", chunk)
    shell = [[10, 45], [11, 45], [11, 46], [10, 46], [10, 45]]
    hole = [[10.2, 45.2], [10.4, 45.2], [10.4, 45.4], [10.2, 45.2]]
    geoms = [
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        {"type": "Polygon", "coordinates": [shell, hole]},
        {
            "type": "MultiPolygon",
            "coordinates": [
                [[[179, 0], [180, 0], [180, 1], [179, 0]]],
                [[[-180, 0], [-179, 0], [-179, 1], [-180, 0]]],
            ],
        },
        {"type": "Polygon", "coordinates": [[[5, 5, 100], [6, 5, 100], [6, 6, 90], [5, 5, 100]]]},
        {"type": "Point", "coordinates": [3.0, 4.0]},
        None,  # bbox only
        {"type": "Polygon", "coordinates": [[[40, 40], [41, 40], [41, 41], [40, 41]]]},  # open
        {"type": "Polygon", "coordinates": [[[20, 20], [21, 20], [21, 21], [20, 21], [20, 20]]]},
    ]
    items = []
    for i, g in enumerate(geoms):
        it = _remote_item(f"g{i}", f"2021-01-{i + 1:02d}T00:00:00Z")
        it["geometry"] = g
        it["bbox"] = [30, 30, 31, 32]
        items.append(it)
    col = load_collection(_write_fc(tmp_path / "c.json", items))
    for item, g in zip(col.items, geoms, strict=True):
        expected = shape(g) if g else box(30, 30, 31, 32)
        assert item.geometry.equals_exact(expected, 0), item.id
        assert item.geometry.has_z == expected.has_z
    assert col.bounds == (-180.0, 0.0, 180.0, 46.0)


def test_nan_literals_are_read_and_kept(tmp_path):
    item = _remote_item("nan")
    item["assets"]["B04"]["raster:bands"] = [{"nodata": "__NAN__"}]
    text = json.dumps({"type": "FeatureCollection", "features": [item]})
    path = tmp_path / "c.json"
    path.write_text(text.replace('"__NAN__"', "NaN"))
    col = load_collection(path)
    assert math.isnan(col.items[0].bands["B04"].nodata)
    assert math.isnan(col.items[0].stac["assets"]["B04"]["raster:bands"][0]["nodata"])


@pytest.mark.parametrize(
    ("collections", "expected"),
    [
        pytest.param(["s2", "s2"], "s2", id="items-share-a-collection-field"),
        pytest.param(["s2", "l8"], "mixed", id="items-of-two-collections-file-stem"),
        pytest.param([None, None], "mixed", id="items-without-collection-file-stem"),
    ],
)
def test_collection_id_rules(tmp_path, collections, expected):
    items = [_remote_item(f"i{k}") for k in range(len(collections))]
    for item, name in zip(items, collections, strict=True):
        if name:
            item["collection"] = name
    path = _write_fc(tmp_path / "mixed.json", items, id="ignored")
    assert load_collection(path).id == expected
    assert load_collection(path, collection_id="forced").id == "forced"


def test_load_collections_rejects_two_files_with_one_id(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _write_fc(tmp_path / "a" / "same.json", [_remote_item("x")])
    b = _write_fc(tmp_path / "b" / "same.json", [_remote_item("y")])
    with pytest.raises(CollectionLoadError, match="two collection files have the id 'same'"):
        load_collections([a, b])


# ---------------------------------------------------------------------------------------
# bands


def test_remote_assets_are_never_opened(tmp_path, monkeypatch):
    def no_open(*args, **kwargs):
        raise AssertionError(f"opened {args[0]} while loading")

    monkeypatch.setattr(rasterio, "open", no_open)
    item = _remote_item("r")
    item["assets"]["SCL"] = {"href": "s3://bucket/r/SCL.tif", "type": "image/tiff"}
    item["assets"]["multi"] = {
        "href": "https://example.com/r/multi.tif",
        "type": "image/tiff",
        "eo:bands": [{}, {}],  # two bands, no names
    }
    item["assets"]["visual"] = {"href": "https://example.com/r/TCI.tif", "type": "image/tiff"}
    item["assets"]["overview"] = {"href": "https://example.com/r/ov.tif", "type": "image/tiff"}
    col = load_collection(_write_fc(tmp_path / "c.json", [item]))
    bands = col.items[0].bands
    assert list(bands) == ["B04", "SCL", "multi_b1", "multi_b2"]
    assert bands["SCL"] == Band("SCL", "s3://bucket/r/SCL.tif")
    assert (bands["multi_b2"].href, bands["multi_b2"].bidx) == (
        "https://example.com/r/multi.tif",
        2,
    )


def test_local_undeclared_multiband_asset_is_opened_once_per_key(eolearn_refscenes, monkeypatch):
    opened = []
    real_open = rasterio.open

    def counting_open(path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting_open)
    col = load_collection(eolearn_refscenes["path"])
    assert len(col.items) > 1 and len(opened) == 1
    assert len(col.bands) == 15


def _shared(rel: str) -> Path:
    path = SHARED_ITEMS / rel
    if not path.is_file():
        pytest.skip(f"shared STAC item {rel} not present")
    return path


S2_BANDS = ["AOT", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B11", "B12"]


@pytest.mark.parametrize(
    ("rel", "count", "first_id", "bands", "checks"),
    [
        pytest.param(
            "odc-stac/site2-2020_jun_jul-35MNM.geojson",
            13,
            "S2A_MSIL2A_20200601T080611_R078_T35MNM_20201027T072253",
            [*S2_BANDS, "B8A", "SCL", "WVP"],
            {},
            id="planetary-computer-s2-13-dates-visual-preview-skipped",
        ),
        pytest.param(
            "odc-stac/site1-20200606-tall-strip-africa.geojson",
            9,
            None,
            [*S2_BANDS, "B8A", "SCL", "WVP"],
            {},
            id="planetary-computer-s2-9-tiles-one-date",
        ),
        pytest.param(
            "odc-stac/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531_raster_ext.json",
            1,
            "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531",
            [*S2_BANDS, "B8A", "SCL", "WVP"],
            {"B01": (0.0, None, None), "SCL": (0.0, None, None), "B06": (None, None, None)},
            id="planetary-computer-raster-extension-nodata",
        ),
        pytest.param(
            "odc-stac/S2A_28QCH_20200714_0_L2A.json",
            1,
            "S2A_28QCH_20200714_0_L2A",
            ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11"]
            + ["B12", "AOT", "WVP", "SCL"],
            {},
            id="earth-search-v0-undeclared-visual-overview-skipped",
        ),
        pytest.param(
            "odc-stac/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json",
            1,
            "LC08_L2SP_028030_20200114_20200824_02_T1_SR",
            ["coastal", "blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel"]
            + ["qa_radsat"],
            {},
            id="usgs-landsat-eo-bands-single-named-by-key",
        ),
        pytest.param(
            "stac-geoparquet/landsat-c2-l2-pc.json",
            4,
            None,
            None,
            {"red": (0.0, 2.75e-05, -0.2), "qa": (-9999.0, 0.01, None)},
            id="planetary-computer-landsat-scale-offset",
        ),
        pytest.param(
            "stac-geoparquet/sentinel-2-l2a-pc.json",
            4,
            None,
            [*S2_BANDS, "B8A", "SCL", "WVP"],
            {},
            id="planetary-computer-s2-json-array",
        ),
        pytest.param(
            "rio-tiler-pds/S2A_29RKH_20200219_0_L2A.json",
            1,
            "S2A_29RKH_20200219_0_L2A",
            None,
            {"blue": (0.0, 0.0001, 0.0), "wvp-jp2": (0.0, 0.001, 0.0)},
            id="earth-search-v1-https-and-s3-hrefs",
        ),
        pytest.param(
            "rio-tiler-pds/S2A_31NBJ_20190524_0_L2A.item.json",
            1,
            "S2A_31NBJ_20190524_0_L2A",
            ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11"]
            + ["B12", "AOT", "WVP", "SCL"],
            {},
            id="earth-search-beta2-overview-roles-skipped",
        ),
    ],
)
def test_shared_stac_items_load_without_opening_remote_files(
    monkeypatch, rel, count, first_id, bands, checks
):
    monkeypatch.setattr(rasterio, "open", lambda *a, **k: pytest.fail(f"opened {a[0]}"))
    col = load_collection(_shared(rel))
    assert len(col.items) == count
    assert len({it.id for it in col.items}) == count
    if first_id:
        assert col.items[0].id == first_id
    if bands is not None:
        assert col.bands == bands
    for it in col.items:
        assert not {"visual", "preview", "overview", "thumbnail"} & set(it.bands)
        for band in it.bands.values():
            assert band.href.startswith(("https://", "s3://")), band.href
    for name, (nodata, scale, offset) in checks.items():
        band = col.items[0].bands[name]
        assert (band.nodata, band.scale, band.offset) == (nodata, scale, offset), name
    times = [it.datetime for it in col.items]
    assert times == sorted(times)


def test_shared_items_as_geoparquet_equal_the_json(tmp_path):
    sga = pytest.importorskip("stac_geoparquet.arrow")
    source = _shared("stac-geoparquet/landsat-c2-l2-pc.json")
    items = json.loads(source.read_text())
    path = tmp_path / "landsat.parquet"
    sga.to_parquet(sga.parse_stac_items_to_arrow(items), path)
    from_json = load_collection(source)
    from_parquet = load_collection(path)
    assert from_parquet.id == from_json.id == "landsat-c2-l2"
    assert _summary(from_parquet) == _summary(from_json)


def test_shared_collection_without_item_links_is_empty():
    col = load_collection(_shared("odc-stac/sentinel-2-l2a.collection.json"))
    assert (col.id, col.items, col.bands) == ("sentinel-2-l2a", [], [])


# ---------------------------------------------------------------------------------------
# bad files


def _fc_text(*items: dict[str, Any]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(items)})


def _without(key: str, where: str = "") -> dict[str, Any]:
    item = _remote_item("bad")
    (item[where] if where else item).pop(key)
    return item


BAD_FILES = [
    pytest.param("c.json", "{ not json", "c.json: not JSON nor newline-delimited", id="not-json"),
    pytest.param("c.json", "", "not JSON", id="empty-file"),
    pytest.param("c.json", "[1, 2]", "not a STAC item: a JSON int", id="array-of-numbers"),
    pytest.param("c.json", '"text"', "a JSON str, expected a STAC", id="json-string"),
    pytest.param("c.json", '{"foo": 1}', "got type None", id="json-object-not-stac"),
    pytest.param(
        "c.json",
        _fc_text({**_remote_item("x"), "type": "Polygon"}),
        "type is 'Polygon', expected 'Feature'",
        id="feature-collection-of-non-features",
    ),
    pytest.param("c.json", _fc_text(_without("id")), "id None is not a non-empty", id="no-id"),
    pytest.param(
        "c.json",
        _fc_text(_without("datetime", "properties")),
        "item 'bad' has no datetime nor start_datetime",
        id="no-datetime",
    ),
    pytest.param(
        "c.json",
        _fc_text(_remote_item("bad", "yesterday")),
        "datetime 'yesterday' is not an RFC 3339 datetime",
        id="bad-datetime",
    ),
    pytest.param(
        "c.json",
        _fc_text({**_without("geometry"), "bbox": None}),
        "item 'bad' has neither geometry nor bbox",
        id="no-footprint",
    ),
    pytest.param(
        "c.json",
        _fc_text({**_remote_item("bad"), "geometry": {"type": "Polygon", "coordinates": [[1]]}}),
        "item 'bad': geometry is not GeoJSON",
        id="bad-geometry",
    ),
    pytest.param(
        "c.json",
        _fc_text({**_remote_item("bad"), "geometry": {"type": "Polygon", "coordinates": [1]}}),
        "item 'bad': geometry is not GeoJSON",
        id="geometry-coordinates-not-rings",
    ),
    pytest.param(
        "c.json",
        _fc_text({**_remote_item("bad"), "bbox": [1, 2], "geometry": None}),
        "item 'bad': bbox \\[1, 2\\] is not 4 or 6 numbers",
        id="bad-bbox",
    ),
    pytest.param(
        "c.json",
        _fc_text(
            {
                **_remote_item("bad"),
                "assets": {"B1": {"href": "b.tif", "raster:bands": {"nodata": 0}}},
            }
        ),
        "c.json: item 0 \\('bad'\\) is not a valid STAC item: KeyError",
        id="raster-bands-not-a-list",
    ),
    pytest.param(
        "c.json",
        _fc_text({**_remote_item("bad"), "assets": {"meta": {"href": "x.xml"}}}),
        "item 'bad' has no raster asset",
        id="no-raster-asset",
    ),
    pytest.param(
        "c.json",
        _fc_text(_remote_item("same"), _remote_item("same")),
        "c.json: duplicate item id 'same'",
        id="duplicate-ids",
    ),
    pytest.param(
        "c.json",
        _fc_text(
            {
                **_remote_item("bad"),
                "assets": {**_remote_item("bad")["assets"], "x": {"type": "image/png"}},
            }
        ),
        "not a STAC item \\('bad'\\)",
        id="asset-without-href-caught-by-pystac",
    ),
    pytest.param(
        "c.ndjson",
        json.dumps(_remote_item("a")) + "\n{oops\n",
        "c.ndjson: line 2 is not JSON",
        id="ndjson-bad-line",
    ),
    pytest.param(
        "c.json",
        json.dumps(
            {"type": "Collection", "id": "c", "links": [{"rel": "item", "href": "no.json"}]}
        ),
        "c.json: linked item file not found",
        id="collection-missing-item-file",
    ),
    pytest.param(
        "c.json",
        json.dumps(
            {"type": "Collection", "id": "c", "links": [{"rel": "item", "href": "https://x/i"}]}
        ),
        "remote item links are not fetched",
        id="collection-remote-item-link",
    ),
    pytest.param("c.parquet", "not parquet", "c.parquet: not a Parquet file", id="not-parquet"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FILES)
def test_bad_files_raise_collection_load_error(tmp_path, name, text, message):
    if name.endswith(".parquet"):
        pytest.importorskip("stac_geoparquet")
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CollectionLoadError, match=message):
        load_collection(path)
    assert gc.isenabled()


def test_parquet_that_is_not_stac_geoparquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("stac_geoparquet")
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    with pytest.raises(CollectionLoadError, match="not stac-geoparquet: no column geometry, id"):
        load_collection(path)


def test_missing_file(tmp_path):
    with pytest.raises(CollectionLoadError, match="collection file not found: .*nowhere.json"):
        load_collection(tmp_path / "nowhere.json")
