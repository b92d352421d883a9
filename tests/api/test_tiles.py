"""HTTP: collections, tiles in every format against the oracle, and bad inputs."""

from __future__ import annotations

import io

import morecantile
import numpy
import pytest
import rasterio
from fastapi.testclient import TestClient
from support.oracle import days

from tiler.app import create_app
from tiler.catalog.loaders import load_collection
from tiler.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def client(synthetic):
    app = create_app(Settings(collections=[synthetic["path"]], read_threads=3))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def busy_tile(synthetic):
    """A z15 tile that several synthetic items overlap."""
    col = load_collection(synthetic["path"])
    w, s, e, n = col.bounds
    return WMQ.tile((w + e) / 2, (s + n) / 2, 15)


def _decode(content: bytes) -> numpy.ndarray:
    """Decode an image body (PNG, JPEG, WebP) to (bands, rows, cols)."""
    with rasterio.MemoryFile(content) as mem, mem.open() as src:
        return src.read()


def test_healthz_and_docs(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_collections_describe_bands_extent_and_defaults(client):
    cols = client.get("/collections").json()["collections"]
    assert [c["id"] for c in cols] == ["test"]
    c = client.get("/collections/test").json()
    assert c["item_count"] == 7
    assert c["bands"] == ["q", "a", "b"]
    assert c["default"]["quality"] == "q"
    assert c["datetime"][0].startswith("2021-06-01")
    w, s, e, n = c["bounds"]
    assert 14.9 < w < e < 15.1 and 45 < s < n < 45.2


def test_npy_tile_equals_oracle(client, synthetic, busy_tile, oracle, tile_reader):
    t = busy_tile
    r = client.get(
        f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy",
        params={"quality": "q", "bands": "a,b,quality,_index,_date"},
    )
    assert r.status_code == 200, r.text
    arr = numpy.load(io.BytesIO(r.content))
    assert arr.shape == (6, 256, 256)
    col = load_collection(synthetic["path"])
    items = [
        it
        for it in col.items
        if it.geometry.intersects(
            __import__("shapely.geometry", fromlist=["box"]).box(*WMQ.bounds(t))
        )
    ]
    assert int(r.headers["X-Items-Considered"]) == len(items) >= 3
    reads = [tile_reader({k: b.href for k, b in it.bands.items()}, t.x, t.y, t.z) for it in items]
    data, valid = oracle(
        reads, lambda v: v["q"], ["q"], ["a", "b", "quality", "_index", "_date"], days(items)
    )
    numpy.testing.assert_array_equal(arr[-1] != 0, valid)
    numpy.testing.assert_array_equal(arr[:-1][:, valid], data[:, valid])
    assert "quality;dur=" in r.headers["Server-Timing"]


def test_tif_tile_has_raw_values_and_alpha(client, busy_tile):
    t = busy_tile
    r = client.get(f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.tif?bands=a,b")
    assert r.status_code == 200
    with rasterio.MemoryFile(r.content) as mem, mem.open() as src:
        assert src.count == 3
        assert src.dtypes[0] == "int32"  # uint16 and int16 together
        a, alpha = src.read(1), src.read(3)
        assert set(numpy.unique(a[alpha != 0]) // 100) <= set(range(1, 8))
        assert src.crs.to_epsg() == 3857


@pytest.mark.parametrize(
    ("suffix", "size", "bands"),
    [
        pytest.param("", 256, 4, id="default-png"),
        pytest.param(".png", 256, 4, id="png"),
        pytest.param("@2x.png", 512, 4, id="retina"),
        pytest.param(".webp", 256, 4, id="webp"),
        pytest.param(".jpg", 256, 3, id="jpeg"),
    ],
)
def test_image_formats(client, busy_tile, suffix, size, bands):
    t = busy_tile
    r = client.get(
        f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}{suffix}",
        params={"bands": "a,a,b", "min": "0,0,0", "max": "800,800,3000", "gamma": "1.2"},
    )
    assert r.status_code == 200, r.text
    img = _decode(r.content)
    assert img.shape == (bands, size, size)


def test_palette_renders_single_band(client, busy_tile):
    t = busy_tile
    r = client.get(
        f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png",
        params={"bands": "_index", "min": 0, "max": 6, "palette": "000000,ff0000"},
    )
    assert r.status_code == 200, r.text
    rgba = _decode(r.content)
    valid = rgba[3] > 0
    assert valid.any()
    assert (rgba[1][valid] == 0).all() and (rgba[2][valid] == 0).all()
    assert len(numpy.unique(rgba[0][valid])) > 2


def test_tile_without_items_is_transparent(client):
    r = client.get("/collections/test/tiles/WebMercatorQuad/10/0/0.png")
    assert r.status_code == 200
    assert r.headers["X-Items-Considered"] == "0"
    rgba = _decode(r.content)
    assert (rgba[-1] == 0).all()


def test_filters_select_items(client, busy_tile):
    t = busy_tile
    base = f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
    r_all = client.get(base)
    r_a = client.get(base, params={"filter": "platform = 'sentinel-2a'"})
    r_ids = client.get(base, params={"ids": "it-a0"})
    r_dt = client.get(base, params={"datetime": "2021-06-04/.."})
    n_all = int(r_all.headers["X-Items-Considered"])
    assert int(r_a.headers["X-Items-Considered"]) < n_all
    assert r_ids.headers["X-Items-Considered"] == "1"
    assert int(r_dt.headers["X-Items-Considered"]) < n_all


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        pytest.param(
            "/collections/nope", {}, 404, "served collections: test", id="unknown-collection"
        ),
        pytest.param(
            "/collections/nope/tiles/WebMercatorQuad/15/1/1.png",
            {},
            404,
            "served collections",
            id="unknown-collection-tile",
        ),
        pytest.param(
            "TILE.png", {"bands": "a,zz"}, 400, "bands of test: q, a, b", id="unknown-band"
        ),
        pytest.param(
            "TILE.png", {"quality": "zz+1"}, 400, "unknown band 'zz'", id="unknown-band-in-quality"
        ),
        pytest.param(
            "TILE.png", {"quality": "q +* 2"}, 400, "not valid", id="malformed-expression"
        ),
        pytest.param(
            "TILE.png",
            {"quality": "__import__('os')"},
            400,
            "unknown function",
            id="code-injection",
        ),
        pytest.param("TILE.png", {"quality": "3"}, 400, "reads no band", id="constant-quality"),
        pytest.param(
            "/collections/test/tiles/WebMercatorQuad/3/100/1.png",
            {},
            404,
            "x must be in 0..7",
            id="tile-outside-matrix",
        ),
        pytest.param(
            "/collections/test/tiles/WebMercatorQuad/40/1/1.png",
            {},
            404,
            "allowed 0..24",
            id="zoom-outside-matrix",
        ),
        pytest.param("TILE.gif", {}, 400, "supported: png, jpeg", id="unsupported-format"),
        pytest.param(
            "/collections/test/tiles/NoSuchTMS/1/1/1.png",
            {},
            404,
            "WebMercatorQuad",
            id="unsupported-tms",
        ),
        pytest.param(
            "TILE.png",
            {"min": "5", "max": "1"},
            400,
            "min must be <= max",
            id="min-greater-than-max",
        ),
        pytest.param(
            "TILE.png",
            {"min": "1,2", "max": "3,4"},
            400,
            "one value or one per band",
            id="min-count",
        ),
        pytest.param(
            "TILE.png", {"min": "a", "max": "1"}, 400, "expected a number", id="min-not-a-number"
        ),
        pytest.param(
            "TILE.png",
            {"bands": "a,b,q", "palette": "ff0000"},
            400,
            "single band",
            id="palette-multiband",
        ),
        pytest.param(
            "TILE.png", {"bands": "a", "palette": "zzzzzz"}, 400, "not hex", id="palette-not-hex"
        ),
        pytest.param(
            "TILE.png",
            {"gamma": "-1", "min": 0, "max": 1},
            400,
            "gamma must be > 0",
            id="gamma-negative",
        ),
        pytest.param("TILE.png", {"datetime": "yesterday"}, 400, "RFC 3339", id="bad-datetime"),
        pytest.param(
            "TILE.png",
            {"datetime": "2021-07-01/2021-06-01"},
            400,
            "start is after",
            id="datetime-reversed",
        ),
        pytest.param("TILE.png", {"bbox": "1,2,3"}, 400, "4 numbers", id="bad-bbox"),
        pytest.param("TILE.png", {"filter": "eo:cloud_cover <<< 3"}, 400, "CQL2", id="bad-filter"),
        pytest.param("TILE.png", {"sortby": "-(x)"}, 400, "sortby", id="bad-sortby"),
        pytest.param(
            "TILE@4x.png", {"tilesize": 512}, 400, "exceeds the limit", id="oversized-tile"
        ),
        pytest.param("TILE@9x.png", {}, 400, "@1x to @4x", id="bad-scale"),
        pytest.param(
            "/collections/test/tiles/WebMercatorQuad/x/1/1.png", {}, 400, "z", id="non-integer-zoom"
        ),
        pytest.param(
            "/collections/test/tiles/WebMercatorQuad/15/1/abc.png", {}, 400, "{y}", id="bad-row"
        ),
        pytest.param("TILE.png", {"preset": "nope"}, 400, "unknown preset", id="unknown-preset"),
        pytest.param("TILE.png", {"resampling": "magic"}, 400, "resampling", id="bad-resampling"),
    ],
)
def test_bad_input_gets_4xx_json_that_says_what_is_allowed(
    client, busy_tile, path, params, status, says
):
    t = busy_tile
    path = path.replace("TILE", f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}")
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert says in r.json()["detail"]


def test_etag_and_if_none_match_give_304(client, busy_tile):
    t = busy_tile
    url = f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png?quality=-q"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public")
    again = client.get(url)
    assert again.headers["X-Cache"] == "hit" and again.content == first.content
    assert again.headers["ETag"] == etag
    r304 = client.get(url, headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b""
    other = client.get(url.replace("-q", "q"), headers={"If-None-Match": etag})
    assert other.status_code == 200


def test_cors_and_gzip(client):
    r = client.get(
        "/collections", headers={"Origin": "http://example.test", "Accept-Encoding": "gzip"}
    )
    assert r.headers["access-control-allow-origin"] == "*"
    r = client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"


def test_root_serves_the_viewer(client):
    r = client.get("/")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]


def test_items_route_lists_the_selection_in_collection_order(client):
    r = client.get("/collections/test/items", params={"sortby": "-eo:cloud_cover", "limit": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["numberMatched"] == 7 and body["numberReturned"] == 3
    clouds = [f["properties"]["eo:cloud_cover"] for f in body["features"]]
    assert clouds == sorted(clouds, reverse=True)
    assert any(link["rel"] == "next" for link in body["links"])
    r = client.get("/collections/test/items", params={"filter": "platform = 'sentinel-2b'"})
    assert {f["properties"]["platform"] for f in r.json()["features"]} == {"sentinel-2b"}
    assert client.get("/collections/test/items", params={"limit": 0}).status_code == 400


def test_provenance_bands_on_an_empty_tile(client):
    r = client.get("/collections/test/tiles/WebMercatorQuad/10/0/0.npy?bands=_date,_doy,quality")
    assert r.status_code == 200
    arr = numpy.load(io.BytesIO(r.content))
    assert arr.shape == (4, 256, 256) and not arr[-1].any()


def test_unscale_applies_raster_bands_scale_offset(synthetic, busy_tile, tmp_path):
    import json

    fc = json.loads(synthetic["path"].read_text())
    for f in fc["features"]:
        for key, asset in f["assets"].items():
            asset["href"] = str((synthetic["path"].parent / asset["href"]).resolve())
            if key == "q":
                asset["raster:bands"][0].update(scale=-2.0, offset=1.0)
            if key == "a":
                asset["raster:bands"][0].update(scale=0.5, offset=10.0)
    path = tmp_path / "scaled.json"
    path.write_text(json.dumps(fc))
    t = busy_tile
    url = f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
    with TestClient(create_app(Settings(collections=[path]))) as c:
        raw = numpy.load(
            io.BytesIO(c.get(url, params={"quality": "-q", "bands": "a,_index"}).content)
        )
        scaled = numpy.load(
            io.BytesIO(
                c.get(url, params={"quality": "q", "bands": "a,_index", "unscale": "true"}).content
            )
        )
    # -2q + 1 ranks like -q: same winners; a comes out as 0.5 a + 10
    numpy.testing.assert_array_equal(raw[-1], scaled[-1])
    valid = raw[-1] != 0
    numpy.testing.assert_array_equal(raw[1][valid], scaled[1][valid])
    numpy.testing.assert_array_equal(raw[0][valid] * 0.5 + 10, scaled[0][valid])


def test_collection_summaries(client):
    s = client.get("/collections/test").json()["summaries"]
    assert s["platform"] == ["sentinel-2a", "sentinel-2b"]
    assert s["eo:cloud_cover"]["minimum"] == 0 and s["eo:cloud_cover"]["maximum"] > 50


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"bands": "q", "rescale": "0,3", "colormap_name": "viridis"}, id="colormap"),
        pytest.param(
            {"bands": "a,a,b", "rescale": "0,800", "color_formula": "gamma RGB 1.5"},
            id="color-formula",
        ),
        pytest.param({"preset": "default"}, id="preset"),
    ],
)
def test_titiler_rendering_parameters(client, busy_tile, params):
    t = busy_tile
    r = client.get(f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png", params=params)
    assert r.status_code == 200, r.text
    img = _decode(r.content)
    assert img.shape[0] == 4 and img[3].any()


def test_a_tile_over_too_many_items_says_where_the_map_works_as_data(synthetic, busy_tile):
    """The 400 carries ``minzoom`` (and the count and limit) in its JSON body: the viewer
    reads the zoom from there, never from the message's words."""
    app = create_app(Settings(collections=[synthetic["path"]], max_items_per_tile=1))
    with TestClient(app) as c:
        r = c.get(
            f"/collections/test/tiles/WebMercatorQuad/{busy_tile.z}/{busy_tile.x}/{busy_tile.y}.png"
        )
        body = r.json()
        assert r.status_code == 400 and body["limit"] == 1 and body["matched"] > 1
        assert body["minzoom"] > busy_tile.z
        assert f"zoom in to {body['minzoom']}" in body["detail"]
