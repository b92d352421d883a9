"""TileJSON, WMTS and tileset metadata, checked with real clients (OWSLib, GDAL)."""

from __future__ import annotations

import httpx
import morecantile
import numpy
import pytest
import rasterio
from fastapi.testclient import TestClient
from owslib.wmts import WebMapTileService
from support.net import uvicorn_thread

from tiler.app import create_app
from tiler.settings import Settings


@pytest.fixture(scope="module")
def app(synthetic):
    return create_app(Settings(collections=[synthetic["path"]], read_threads=2))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def live(app):
    """The app on a real loopback port, for clients that speak HTTP themselves."""
    with uvicorn_thread(app) as url:
        yield url


def test_tilejson_is_valid_and_carries_the_layer(client):
    r = client.get(
        "/collections/test/WebMercatorQuad/tilejson.json",
        params={"quality": "-q", "bands": "a", "min": 0, "max": 800, "tile_scale": 2},
    )
    assert r.status_code == 200, r.text
    tj = r.json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["minzoom"] <= tj["maxzoom"]
    w, s, e, n = tj["bounds"]
    assert w < e and s < n
    url = tj["tiles"][0]
    assert "/collections/test/tiles/WebMercatorQuad/{z}/{x}/{y}@2x.png?" in url
    assert "quality=-q" in url and "tile_scale" not in url


@pytest.mark.parametrize("tms", ["WebMercatorQuad", "WorldCRS84Quad", "UTM31WGS84Quad"])
def test_tilejson_for_every_tms(client, tms):
    r = client.get(f"/collections/test/{tms}/tilejson.json")
    assert r.status_code == 200
    assert f"/tiles/{tms}/" in r.json()["tiles"][0]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param(
            "/collections/test/WebMercatorQuad/tilejson.json?quality=nope",
            400,
            id="tilejson-bad-quality",
        ),
        pytest.param("/collections/test/Nope/tilejson.json", 404, id="tilejson-bad-tms"),
        pytest.param(
            "/collections/test/WebMercatorQuad/WMTSCapabilities.xml?min=3&max=1",
            400,
            id="wmts-min-max",
        ),
        pytest.param(
            "/collections/test/WebMercatorQuad/tilejson.json?tile_format=gif",
            400,
            id="tilejson-bad-format",
        ),
    ],
)
def test_bad_map_requests(client, path, status):
    r = client.get(path)
    assert r.status_code == status
    assert "detail" in r.json()


def test_tileset_metadata(client):
    r = client.get("/collections/test/tiles/WebMercatorQuad")
    assert r.status_code == 200
    body = r.json()
    assert body["tileMatrixSetLimits"]
    assert any(link["rel"] == "item" for link in body["links"])
    assert len(client.get("/collections/test/tiles").json()["tilesets"]) > 5


@pytest.mark.e2e
def test_owslib_parses_wmts_and_fetches_a_tile(live):
    wmts = WebMapTileService(
        f"{live}/collections/test/WebMercatorQuad/WMTSCapabilities.xml?quality=q"
    )
    layer_ids = list(wmts.contents)
    assert layer_ids == ["test", "test_default"]  # the request's layer, then presets
    layer = wmts.contents["test"]
    limits = layer.tilematrixsetlinks["WebMercatorQuad"].tilematrixlimits
    z = max(limits, key=int)
    lim = limits[z]
    tile = wmts.gettile(
        layer="test",
        tilematrixset="WebMercatorQuad",
        tilematrix=z,
        row=(lim.mintilerow + lim.maxtilerow) // 2,
        column=(lim.mintilecol + lim.maxtilecol) // 2,
        format="image/png",
    )
    assert tile.read()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_gdal_reads_wmts_and_xyz_with_data(live):
    with rasterio.open(
        f"WMTS:{live}/collections/test/WebMercatorQuad/WMTSCapabilities.xml?quality=q,layer=test"
    ) as src:
        assert src.crs.to_epsg() == 3857
        from rasterio.windows import Window

        h, w = src.height, src.width
        data = src.read(window=Window(w // 2 - 32, h // 2 - 32, 64, 64))
        assert data[-1].any()  # alpha: some pixels have data
    xyz = (
        f'<GDAL_WMS><Service name="TMS"><ServerUrl>{live}/collections/test/tiles/'
        "WebMercatorQuad/${z}/${x}/${y}.png?bands=a,a,a&amp;min=0&amp;max=800</ServerUrl>"
        "</Service><DataWindow><UpperLeftX>-20037508.34</UpperLeftX><UpperLeftY>"
        "20037508.34</UpperLeftY><LowerRightX>20037508.34</LowerRightX><LowerRightY>"
        "-20037508.34</LowerRightY><TileLevel>16</TileLevel><TileCountX>1</TileCountX>"
        "<TileCountY>1</TileCountY><YOrigin>top</YOrigin></DataWindow><Projection>"
        "EPSG:3857</Projection><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>"
        "<BandsCount>4</BandsCount></GDAL_WMS>"
    )
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    with rasterio.open(xyz) as src:
        col = httpx.get(f"{live}/collections/test").json()
        w, s, e, n = transform_bounds("EPSG:4326", "EPSG:3857", *col["bounds"])
        window = from_bounds(w, s, e, n, src.transform)
        data = src.read(window=window, out_shape=(4, 64, 64))
        assert (data[3] > 0).mean() > 0.3
        assert numpy.unique(data[0][data[3] > 0]).size > 3


def test_zoom_range_of_an_unreadable_file_is_not_kept(synthetic, tmp_path):
    import dataclasses
    import shutil

    from tiler.api.maps import zoom_range
    from tiler.catalog.loaders import load_collection
    from tiler.catalog.memory import MemoryCatalog
    from tiler.engine.credentials import Credentials

    opener = Credentials()
    col = load_collection(synthetic["path"])
    first = col.items[0]
    band = next(iter(first.bands.values()))
    later = tmp_path / "later.tif"
    item = dataclasses.replace(first, bands={band.name: dataclasses.replace(band, href=str(later))})
    catalog = MemoryCatalog("c", [item])
    wmq = morecantile.tms.get("WebMercatorQuad")
    assert zoom_range(catalog, wmq, opener) == (wmq.maxzoom - 6, wmq.maxzoom)  # unreadable
    shutil.copy(band.href, later)
    native = zoom_range(col, wmq, opener)
    assert native[1] < wmq.maxzoom
    assert zoom_range(catalog, wmq, opener) == native  # readable now: not frozen at fallback
