"""Common names as band names (issue 21 item 2): one URL for Planetary Computer's layout
(asset keys B04, ... with eo:bands common names) and Earth Search v1's (asset keys red, ...)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from support.stac_files import CRS, ORIGIN, RES, stac_item, write_cog, write_collection

from tiler.app import create_app
from tiler.catalog.models import scl_quality
from tiler.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")
SIZE = 48
#: band file -> (Planetary Computer key, Earth Search v1 key, common name)
BANDS = {
    "B02": ("B02", "blue", "blue"),
    "B03": ("B03", "green", "green"),
    "B04": ("B04", "red", "red"),
    "B08": ("B08", "nir", "nir"),
    "B05": ("B05", "rededge1", "rededge"),
    "B06": ("B06", "rededge2", "rededge"),
    "SCL": ("SCL", "scl", None),
}
NDVI = "(nir-red)/(nir+red)"


def _collections(root: Path) -> dict[str, Path]:
    """Three scenes as ``s2-pc`` and ``s2-es`` (same files), and ``s2-bare`` (no renders)."""
    scenes = []
    for k in range(3):
        rng = numpy.random.default_rng(k)
        x0, y0 = ORIGIN[0] + 60.0 * k, ORIGIN[1] - 30.0 * k
        files = {}
        for name in BANDS:
            if name == "SCL":
                data = rng.choice(numpy.arange(1, 12, dtype="uint8"), (SIZE // 2, SIZE // 2))
                transform = from_origin(x0, y0, 2 * RES, 2 * RES)
            else:
                data = rng.integers(1, 4000, (SIZE, SIZE)).astype("uint16")
                transform = from_origin(x0, y0, RES, RES)
            path = root / f"s{k}" / f"{name}.tif"
            write_cog(path, data, transform=transform, crs=CRS, nodata=0)
            files[name] = (path, 0)
        scenes.append((f"S2A_T33_2022070{k + 1}", f"2022-07-0{k + 1}T10:00:00Z", files))
    out = {}
    for layout, column in (("pc", 0), ("es", 1)):
        items = []
        for item_id, when, files in scenes:
            doc = stac_item(item_id, when, files, root, collection=f"s2-{layout}")
            assets = {}
            for name, asset in doc["assets"].items():
                key, common = BANDS[name][column], BANDS[name][2]
                if common is not None:
                    asset["eo:bands"] = [{"name": key, "common_name": common}]
                assets[key] = asset
            doc["assets"] = assets
            items.append(doc)
        renders = {"ndvi": {"quality": NDVI, "bands": ["red", "green", "blue"], "max": 3000}}
        out[layout] = write_collection(root / f"s2-{layout}.json", items, renders=renders)
        if layout == "pc":  # the same without renders: the built-in default applies
            for doc in items:
                doc["collection"] = "s2-bare"
            out["bare"] = write_collection(root / "s2-bare.json", items)
    return out


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _collections(tmp_path_factory.mktemp("aliases"))


@pytest.fixture(scope="module")
def client(layouts: dict[str, Path]) -> Any:
    paths = [layouts["pc"], layouts["es"], layouts["bare"]]
    settings = Settings(collections=paths, read_threads=2)
    with TestClient(create_app(settings)) as c:
        yield c


def _centre(client: Any) -> tuple[float, float]:
    w, s, e, n = client.get("/collections/s2-pc").json()["bounds"]
    return ((w + e) / 2, (s + n) / 2)


def test_collections_list_their_common_names(client):
    pc = client.get("/collections/s2-pc").json()
    assert pc["aliases"] == {
        "blue": ["B02"],
        "green": ["B03"],
        "red": ["B04"],
        "nir": ["B08"],
        "rededge": ["B05", "B06"],
    }
    es = client.get("/collections/s2-es").json()
    # band names are never aliases: red, green, blue, nir mean their own bands
    assert es["aliases"] == {"rededge": ["rededge1", "rededge2"]}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"bands": "red,green,blue", "quality": NDVI}, id="ndvi-true-colour"),
        pytest.param({"bands": "nir,red,_index"}, id="default-quality-of-the-render"),
        pytest.param({"bands": "red", "quality": "-blue", "palette": "000000,ffffff"}, id="one"),
        pytest.param({"preset": "ndvi"}, id="preset-written-with-common-names"),
    ],
)
@pytest.mark.parametrize("fmt", ["npy", "png"])
def test_one_url_gives_the_same_bytes_on_both_layouts(client, params, fmt):
    t = WMQ.tile(*_centre(client), 16)
    path = f"tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.{fmt}"
    pc = client.get(f"/collections/s2-pc/{path}", params=params)
    es = client.get(f"/collections/s2-es/{path}", params=params)
    assert pc.status_code == es.status_code == 200, (pc.text, es.text)
    assert pc.content == es.content
    if fmt == "npy":
        data = numpy.load(io.BytesIO(pc.content))
        assert data[-1].any()  # some pixels are valid


def test_common_names_resolve_to_the_band_names_they_stand_for(client):
    t = WMQ.tile(*_centre(client), 16)
    path = f"/collections/s2-pc/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
    by_alias = client.get(path, params={"bands": "red,nir", "quality": NDVI})
    by_name = client.get(path, params={"bands": "B04,B08", "quality": "(B08-B04)/(B08+B04)"})
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.content == by_name.content


def test_without_renders_the_default_is_the_scl_ranking_over_true_colour(client):
    assert client.get("/collections/s2-es").json()["default"]["quality"] == NDVI  # renders win
    c = client.get("/collections/s2-bare").json()
    assert c["default"] == {
        "quality": scl_quality("SCL"),
        "bands": ["B04", "B03", "B02"],
        "min": 0,
        "max": 4500,
    }
    t = WMQ.tile(*_centre(client), 16)
    path = f"/collections/s2-bare/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
    by_default = client.get(path)
    explicit = client.get(path, params={"quality": scl_quality("SCL"), "bands": "red,green,blue"})
    assert by_default.status_code == 200, by_default.text
    assert by_default.content == explicit.content


def test_points_and_exports_take_common_names(client):
    lon, lat = _centre(client)
    params = {"bands": "red,nir,quality", "quality": NDVI}
    pc = client.get(f"/collections/s2-pc/point/{lon},{lat}", params=params).json()
    es = client.get(f"/collections/s2-es/point/{lon},{lat}", params=params).json()
    assert pc["winner"] == es["winner"] and pc["winner"] is not None
    # responses name the bands read (the aliases resolved)
    assert list(pc["values"]) == ["B04", "B08", "quality"]
    assert list(es["values"]) == ["red", "nir", "quality"]
    assert list(pc["values"].values()) == list(es["values"].values())
    d = 0.002
    bbox = f"{lon - d},{lat - d},{lon + d},{lat + d}"
    exports = [
        client.get(f"/collections/s2-{layout}/bbox/{bbox}/64x64.npy", params=params)
        for layout in ("pc", "es")
    ]
    assert exports[0].status_code == 200, exports[0].text
    assert exports[0].content == exports[1].content


@pytest.mark.parametrize(
    ("collection", "params", "listed"),
    [
        pytest.param("s2-pc", {"bands": "rededge"}, "B05, B06", id="output-band-pc"),
        pytest.param("s2-es", {"bands": "rededge"}, "rededge1, rededge2", id="output-band-es"),
        pytest.param("s2-pc", {"quality": "rededge - red"}, "B05, B06", id="quality-pc"),
        pytest.param("s2-pc", {"quality": "red", "bands": "nir08"}, "red (B04)", id="unknown"),
        pytest.param("s2-pc", {"quality": "nir08"}, "red (B04)", id="unknown-in-quality"),
    ],
)
def test_ambiguous_and_unknown_names_answer_400_listing_the_choices(
    client, collection, params, listed
):
    t = WMQ.tile(*_centre(client), 16)
    for route in (
        f"/collections/{collection}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png",
        f"/collections/{collection}/point/{_centre(client)[0]},{_centre(client)[1]}",
    ):
        r = client.get(route, params={"quality": "nir", **params})
        assert r.status_code == 400, r.text
        assert listed in r.json()["detail"], r.json()["detail"]
