"""Exports: bbox and feature, on native grids against real composites and the oracle."""

from __future__ import annotations

import numpy
import pytest
import rasterio
from fastapi.testclient import TestClient

from tiler.app import create_app
from tiler.settings import Settings


@pytest.fixture(scope="module")
def eolearn_client(eolearn_series):
    app = create_app(Settings(collections=[eolearn_series["path"]], max_export_pixels=10**6))
    with TestClient(app) as c:
        yield c


def test_bbox_export_reproduces_expected_max_ndvi(eolearn_client, eolearn_series):
    with rasterio.open(eolearn_series["expected"]) as src:
        expected = src.read(1)
        bounds, crs, w, h = src.bounds, src.crs, src.width, src.height
    bbox = ",".join(repr(v) for v in bounds)
    r = eolearn_client.get(
        f"/collections/eolearn/bbox/{bbox}/{w}x{h}.tif",
        params={
            "quality": "NDVI",
            "bands": "NDVI,_date",
            "coord_crs": crs.to_string(),
            "dst_crs": crs.to_string(),
        },
    )
    assert r.status_code == 200, r.text
    with rasterio.MemoryFile(r.content) as mem, mem.open() as src:
        assert src.crs == crs and src.transform.almost_equals(
            rasterio.open(eolearn_series["expected"]).transform
        )
        assert src.descriptions[:2] == ("NDVI", "_date")
        ndvi = src.read(1)
        assert (src.read(3) == 255).all()
    assert ndvi.astype("float32").tobytes() == expected.tobytes()  # bit for bit


def test_feature_export_masks_outside_the_polygon(eolearn_client, eolearn_series):
    with rasterio.open(eolearn_series["expected"]) as src:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    tri = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [w, n], [w, s]]]},
    }
    r = eolearn_client.post(
        "/collections/eolearn/feature?quality=NDVI&bands=NDVI&format=npy&width=64&height=64",
        json=tri,
    )
    assert r.status_code == 200, r.text
    import io

    arr = numpy.load(io.BytesIO(r.content))
    valid = arr[-1] != 0
    assert valid[-10, 10] and not valid[10, -10]  # lower-left inside, upper-right outside


@pytest.mark.parametrize(
    ("path", "says"),
    [
        pytest.param("/collections/eolearn/bbox/1,2,3/10x10.png", "4 finite numbers", id="bbox-3"),
        pytest.param(
            "/collections/eolearn/bbox/3,2,1,4/10x10.png", "less than max", id="bbox-inverted"
        ),
        pytest.param(
            "/collections/eolearn/bbox/1,2,3,4/10y10.png", "width}x{height", id="bad-size"
        ),
        pytest.param(
            "/collections/eolearn/bbox/1,2,3,4/5000x5000.png", "exceeds the limit", id="too-large"
        ),
        pytest.param("/collections/eolearn/bbox/1,2,3,4/10x10.gif", "format", id="bad-format"),
        pytest.param(
            "/collections/eolearn/bbox/1,2,3,4/10x10.png?dst_crs=EPSG:999999", "crs", id="bad-crs"
        ),
    ],
)
def test_bad_exports(eolearn_client, path, says):
    sep = "&" if "?" in path else "?"
    r = eolearn_client.get(f"{path}{sep}quality=NDVI")
    assert 400 <= r.status_code < 500, r.text
    assert says.lower() in r.json()["detail"].lower()


def test_feature_without_body_is_400(eolearn_client):
    r = eolearn_client.post("/collections/eolearn/feature", json={"type": "nope"})
    assert r.status_code == 400
