"""Point inspection against the oracle's winner and the per-item reads."""

from __future__ import annotations

import numpy
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from rio_tiler.io import Reader

from tiler.app import create_app
from tiler.catalog.loaders import load_collection
from tiler.settings import Settings


@pytest.fixture(scope="module")
def client(synthetic):
    with TestClient(create_app(Settings(collections=[synthetic["path"]]))) as c:
        yield c


def _naive_point(items, lon, lat, point_outside):
    """Per item: (quality or None, a or None); the winner: highest q, first on ties."""
    series = []
    for it in items:
        vals = {}
        for name in ("q", "a"):
            band = it.bands[name]
            try:
                with Reader(band.href) as src:
                    pt = src.point(lon, lat)
            except point_outside:
                vals = None
                break
            vals[name] = None if pt.array.mask[0] else float(pt.array.data[0])
        series.append(vals)
    best = None
    for i, v in enumerate(series):
        q = None if v is None else v["q"]
        if q is None or not numpy.isfinite(q):
            continue
        if best is None or q > series[best]["q"]:
            best = i
    return series, best


def _points(col, n=25):
    to_lonlat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    rng = numpy.random.default_rng(1)
    xs = 500000 + rng.uniform(-40, 700, n)
    ys = 5000640 - rng.uniform(-40, 700, n)
    return [to_lonlat.transform(x, y) for x, y in zip(xs, ys, strict=True)]


def test_point_names_the_oracle_winner(client, synthetic, point_outside):
    col = load_collection(synthetic["path"])
    seen_winner = 0
    for lon, lat in _points(col):
        r = client.get(
            f"/collections/test/point/{lon},{lat}", params={"quality": "q", "bands": "a,quality"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        items = [next(it for it in col.items if it.id == s["id"]) for s in body["items"]]
        series, best = _naive_point(items, lon, lat, point_outside)
        assert [s["index"] for s in body["items"]] == list(range(len(items)))
        if best is None:
            assert body["winner"] is None
            continue
        seen_winner += 1
        assert body["winner"]["id"] == items[best].id
        assert body["values"]["a"] == series[best]["a"]
        assert body["values"]["quality"] == series[best]["q"]
        for s, naive in zip(body["items"], series, strict=True):
            if naive is None:
                assert s["quality"] is None
            else:
                q = naive["q"]
                assert s["quality"] == (q if q is not None and numpy.isfinite(q) else None)
    assert seen_winner > 10


@pytest.mark.parametrize(
    ("coords", "says"),
    [
        pytest.param("abc", "lon,lat", id="not-numbers"),
        pytest.param("1,2,3", "lon,lat", id="three-numbers"),
        pytest.param("200,10", "lon must be", id="out-of-range"),
        pytest.param("nan,10", "finite", id="nan"),
    ],
)
def test_bad_points(client, coords, says):
    r = client.get(f"/collections/test/point/{coords}")
    assert r.status_code == 400
    assert says in r.json()["detail"]


def test_point_outside_everything_has_no_winner(client):
    r = client.get("/collections/test/point/0,0")
    assert r.status_code == 200
    assert r.json()["winner"] is None and r.json()["items"] == []
