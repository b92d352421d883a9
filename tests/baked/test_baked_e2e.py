"""End to end: ``tiler export`` on a local Dask cluster, then ``tiler serve --baked`` of its COG
in its own process: low zooms come from the export, a different filter still gets the 400."""

from __future__ import annotations

import io
import os

import httpx
import morecantile
import numpy
import pytest
import rasterio
from click.testing import CliRunner
from fastapi.testclient import TestClient
from rasterio.crs import CRS
from support.baked import bake
from support.net import tiler_serve
from support.remote_servers import RangeServer

from tiler.app import create_app
from tiler.cli import cli
from tiler.export.chunks import ExportSpec
from tiler.export.plan import Region
from tiler.settings import Settings

#: a Dask cluster and a server process: end to end (pytest -m e2e)
pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")
CENTRE = (15.0051, 45.1556)
UTM = CRS.from_epsg(32633)


def test_an_export_served_as_a_baked_layer(synthetic, tmp_path):
    out = tmp_path / "summer.tif"
    args = ["export", str(synthetic["path"]), "--collection", "test"]
    args += ["--bbox", "499900,4999800,500900,5000700", "--bbox-crs", "EPSG:32633"]
    args += ["--quality", "q", "--bands", "a,b,_date", "--datetime", "2021-06-01/2021-06-30"]
    args += ["--chunk", "512", "--resolution", "1", "--workers", "1", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds:
        tags = ds.tags()
        assert ds.descriptions == ("a", "b", "_date", "valid") and ds.overviews(1)
    assert tags["TILER_COLLECTION"] == "test" and tags["TILER_QUALITY"] == "q"
    assert (
        '"datetime": ["2021-06-01T00:00:00+00:00", "2021-06-30T23:59:59.999999+00:00"]'
        in (tags["TILER_SEARCH"])
    )
    env = {**os.environ, "TILER_MAX_ITEMS_PER_TILE": "3"}
    with tiler_serve(
        str(synthetic["path"]), "--baked", f"summer={out}", log=tmp_path / "serve.log", env=env
    ) as served:
        t = WMQ.tile(*CENTRE, 14)
        base = f"{served.url}/collections/test/tiles/WebMercatorQuad/14/{t.x}/{t.y}.npy?bands=a"
        r = httpx.get(f"{base}&datetime=2021-06-01/2021-06-30")
        assert r.status_code == 200, r.text
        assert r.headers["X-Source"] == "baked"
        data = numpy.load(io.BytesIO(r.content))
        assert (data[-1] == 255).any()
        r = httpx.get(f"{base}&datetime=2021-06-01/2021-06-29")
        assert r.status_code == 400 and r.json()["minzoom"] > 14
        doc = httpx.get(f"{served.url}/collections/test").json()
        assert list(doc["baked"]) == ["summer"] and str(out) not in str(doc)


def test_a_remote_baked_layer_reads_like_a_local_one(synthetic, tmp_path):
    """A layer at an http:// URL (a loopback range server) opens through the engine's dataset
    cache and answers the same tiles as the same file on disk."""
    cog = tmp_path / "cogs" / "summer.tif"
    cog.parent.mkdir()
    spec = ExportSpec((str(synthetic["path"]),), "test", "q", ("a", "b"))
    bake(spec, Region((499900.0, 4999800.0, 500900.0, 5000700.0), UTM), cog, chunk=64)
    t = WMQ.tile(*CENTRE, 14)
    url = f"/collections/test/tiles/WebMercatorQuad/14/{t.x}/{t.y}.npy?bands=b,a"
    with RangeServer(cog.parent) as server:
        answers = []
        for href in (str(cog), f"{server.url}/summer.tif"):
            settings = Settings(
                collections=[synthetic["path"]], baked={"summer": href}, max_items_per_tile=3
            )
            with TestClient(create_app(settings)) as client:
                r = client.get(url)
                assert r.status_code == 200 and r.headers["X-Source"] == "baked", r.text
                answers.append(r.content)
        assert server.requests > 0
    assert answers[0] == answers[1]
