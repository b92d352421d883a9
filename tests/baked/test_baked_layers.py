"""Baked layers served by the app: an export of the synthetic collection answers the tiles live
computation refuses for too many items, for requests of exactly its quality and filters.

The export is run chunk by chunk in this process (support.baked: the real plan, chunk runner,
part store and COG writer; test_baked_e2e.py runs ``tiler export`` on Dask). Baked tiles are
compared with a naive read of the COG (rio-tiler's Reader.tile straight from the file at
nearest resampling, masked where the validity band is not 255) rendered with the same
visualisation.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
import rasterio
from fastapi.testclient import TestClient
from rasterio.crs import CRS
from rio_tiler.colormap import cmap
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from support.baked import bake

from tiler.app import create_app
from tiler.catalog.baked import BakedLayerError
from tiler.export.chunks import ExportSpec
from tiler.export.plan import Region
from tiler.render import Format, Visualisation, encode, parse_palette
from tiler.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")
UTM = CRS.from_epsg(32633)
#: the west half of the synthetic collection and a masked border (50 x 90 px: 2 chunks of 64)
BBOX = (499900.0, 4999800.0, 500400.0, 5000700.0)
BANDS = ("a", "b", "q", "quality", "_index", "_date")
#: the region's centre; a point east of it over all items; one near the items' north-east
#: corner, where few overlap
CENTRE = (15.0019, 45.1557)
EAST = (15.0083, 45.1562)
CORNER = (15.0112, 45.1597)
#: live tiles over more items than this are refused
LIMIT = 3


@pytest.fixture(scope="module")
def cog(synthetic: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baked") / "summer.tif"
    spec = ExportSpec((str(synthetic["path"]),), "test", "q", BANDS)
    bake(spec, Region(BBOX, UTM), out, chunk=64, block=32)
    return out


@pytest.fixture(scope="module")
def client(synthetic: dict[str, Any], cog: Path) -> Iterator[TestClient]:
    settings = Settings(
        collections=[synthetic["path"]],
        baked={"summer": str(cog)},
        max_items_per_tile=LIMIT,
        tile_cache_bytes=0,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _url(z: int, lonlat: tuple[float, float], query: str, fmt: str = "npy") -> str:
    t = WMQ.tile(*lonlat, z)
    return f"/collections/test/tiles/WebMercatorQuad/{z}/{t.x}/{t.y}.{fmt}?{query}"


def _naive(cog: Path, z: int, lonlat: tuple[float, float], bands: list[str]) -> ImageData:
    """The tile read straight from the COG, values in the type live tiles have."""
    t = WMQ.tile(*lonlat, z)
    with rasterio.open(cog) as ds:
        names = list(ds.descriptions)
    indexes = [names.index(b) + 1 for b in [*bands, "valid"]]
    with Reader(str(cog)) as src:
        img = src.tile(t.x, t.y, t.z, indexes=indexes, resampling_method="nearest")
    data = img.array.data
    masked = data[-1] != 255
    live = {"a": "uint16", "b": "int16", "q": "float32", "quality": "float64"}
    live |= {"_index": "int32", "_date": "float64"}
    dtype = numpy.result_type(*[live[b] for b in bands])
    values = numpy.where(masked, 0, data[:-1]).astype(dtype)
    mask = numpy.broadcast_to(masked, values.shape).copy()
    return ImageData(numpy.ma.MaskedArray(values, mask=mask), bounds=img.bounds, crs=img.crs)


def _npy(content: bytes) -> numpy.ndarray:
    return numpy.load(io.BytesIO(content))


def _refused(r: Any) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["minzoom"] > 14 and body["limit"] == LIMIT
    assert "X-Source" not in r.headers


@pytest.mark.parametrize("z", [12, 14, 16])
def test_low_zoom_tiles_come_from_the_cog(client, cog, z):
    r = client.get(_url(z, CENTRE, "bands=a,b,_date"))
    assert r.status_code == 200, r.text
    assert r.headers["X-Source"] == "baked" and r.headers["X-Baked-Layer"] == "summer"
    expected = _naive(cog, z, CENTRE, ["a", "b", "_date"])
    got = _npy(r.content)
    valid = ~expected.array.mask[0]
    assert valid.any() and (~valid).any()  # the region's edge is in the tile
    assert got.dtype == expected.array.dtype
    numpy.testing.assert_array_equal(got[:-1], expected.array.data)
    numpy.testing.assert_array_equal(got[-1], numpy.where(valid, 255, 0))


@pytest.mark.parametrize(
    ("query", "bands", "vis"),
    [
        ("bands=a,b,q&min=100,0,0&max=800,3000,3&gamma=1.5", ["a", "b", "q"], "rgb"),
        ("bands=quality&min=0&max=3&palette=000000,ff0000,ffffff", ["quality"], "palette"),
        ("bands=_index", ["_index"], "none"),
        ("bands=b&min=0&max=3000&colormap_name=viridis", ["b"], "colormap"),
    ],
)
def test_baked_tiles_are_rendered_with_the_requests_visualisation(client, cog, query, bands, vis):
    r = client.get(_url(14, CENTRE, query, "png"))
    assert r.status_code == 200, r.text
    assert r.headers["X-Source"] == "baked"
    image = _naive(cog, 14, CENTRE, bands)
    visual = {
        "rgb": Visualisation(min=(100, 0, 0), max=(800, 3000, 3), gamma=(1.5,)),
        "palette": Visualisation(
            min=(0,), max=(3,), palette=parse_palette(["000000", "ff0000", "ffffff"])
        ),
        "none": Visualisation(),
        "colormap": Visualisation(min=(0,), max=(3000,), colormap=cmap.get("viridis")),
    }[vis]
    content, _ = encode(image, Format.png, visual)
    assert r.content == content


def test_the_default_layer_of_the_collection_is_baked_too(client, cog):
    """No quality or bands: the collection's default (quality q, bands a, b, q)."""
    r = client.get(_url(13, CENTRE, "", "npy"))
    assert r.headers["X-Source"] == "baked"
    numpy.testing.assert_array_equal(
        _npy(r.content)[:-1], _naive(cog, 13, CENTRE, ["a", "b", "q"]).array.data
    )


@pytest.mark.parametrize(
    "query",
    [
        "sortby=datetime",  # the default order spelt out
        "sortby=datetime,id",
        "filter=",
    ],
)
def test_the_same_selection_spelt_otherwise_is_baked(client, query):
    r = client.get(_url(14, CENTRE, f"bands=a&{query}"))
    assert r.status_code == 200, r.text
    assert r.headers["X-Source"] == "baked"


@pytest.mark.parametrize(
    "query",
    [
        "quality=-q",
        "quality=b",
        "datetime=2021-06-01/2021-06-05",
        "filter=eo:cloud_cover < 50",
        "sortby=-datetime",
        "ids=it-a0,it-d1,it-g2,it-c3",
        "bbox=14.9,45.1,15.1,45.2",
        "unscale=true",
        "nodata=5",
    ],
)
def test_another_quality_or_filter_still_gets_the_400(client, query):
    _refused(client.get(_url(14, CENTRE, f"bands=a&{query}")))


def test_a_band_the_layer_lacks_gets_the_400_naming_its_bands(client):
    r = client.get(_url(14, CENTRE, "bands=a,_doy"))
    _refused(r)
    assert "a, b, q, quality, _index, _date, not _doy" in r.json()["detail"]


def test_tiles_outside_the_layer_get_the_400(client):
    """Outside the exported region but over more items than the limit: nothing baked there."""
    assert WMQ.tile(*EAST, 17) != WMQ.tile(*CENTRE, 17)
    _refused(client.get(_url(17, EAST, "bands=a")))


def test_tiles_live_computation_answers_are_live(client):
    r = client.get(_url(18, CORNER, "bands=a,b"))
    assert r.status_code == 200, r.text
    assert r.headers["X-Source"] == "live"
    assert 0 < int(r.headers["X-Items-Considered"]) <= LIMIT


def test_tilejson_minzoom_is_0_only_for_requests_a_layer_answers(client, cog):
    baked = client.get("/collections/test/WebMercatorQuad/tilejson.json?bands=a,b").json()
    assert baked["minzoom"] == 0
    with rasterio.open(cog) as ds:
        bounds = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    assert baked["bounds"] == pytest.approx(list(bounds))
    for query in ("bands=a&quality=-q", "bands=a,_doy", "bands=a&datetime=2021-06-01/.."):
        live = client.get(f"/collections/test/WebMercatorQuad/tilejson.json?{query}").json()
        assert live["minzoom"] > 0, query


def test_the_collection_lists_its_baked_layers_without_their_path(client, cog):
    r = client.get("/collections/test")
    layer = r.json()["baked"]["summer"]
    assert layer["quality"] == "q" and layer["bands"] == list(BANDS)
    assert layer["datetime"] is None and layer["filter"] is None
    assert layer["minmax_zoom"][0] == 0
    assert str(cog) not in r.text and cog.name not in r.text


def test_a_request_cannot_name_a_baked_file(client, synthetic):
    """Only the operator names files: query parameters naming one change nothing."""
    other = next(iter(synthetic["items"][0]["assets"].values()))["href"]
    base = client.get(_url(14, CENTRE, "bands=a"))
    for query in (f"baked={other}", f"url={other}", "baked=summer", f"layer={other}"):
        r = client.get(_url(14, CENTRE, f"bands=a&{query}"))
        assert r.status_code == 200 and r.content == base.content, query
        assert r.headers["X-Baked-Layer"] == "summer"
    r = client.get(_url(14, CENTRE, "bands=a&quality=-q&baked=summer"))
    _refused(r)


def test_a_layer_that_cannot_be_opened_stops_the_start(synthetic, tmp_path, cog):
    item_file = synthetic["root"] / next(iter(synthetic["items"][0]["assets"].values()))["href"]
    cases = {
        str(tmp_path / "missing.tif"): "cannot open",
        str(item_file): "not a COG made by tiler export",
    }
    for href, message in cases.items():
        settings = Settings(collections=[synthetic["path"]], baked={"x": href})
        with pytest.raises(BakedLayerError, match=message):
            create_app(settings)
    with pytest.raises(BakedLayerError, match="collection 'test', which is not served"):
        create_app(Settings(baked={"x": str(cog)}), catalogs={})


def test_a_signed_url_that_cannot_be_opened_keeps_its_token_out_of_the_message(synthetic):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    href = f"http://127.0.0.1:{port}/summer.tif?sv=2021&sig=SECRETSIGNATURE"
    settings = Settings(collections=[synthetic["path"]], baked={"x": href})
    with pytest.raises(BakedLayerError, match="cannot open") as info:
        create_app(settings)
    assert "SECRETSIGNATURE" not in str(info.value)
