"""Planetary Computer items through the Planetary Computer emulator (tests/support/pc_emulator.py).

The 13 real sentinel-2-l2a items of tile 35MNM (../shared/data) keep their real
``https://sentinel2l2a01.blob.core.windows.net/...`` hrefs; their files are small synthetic COGs
of the same georeferencing (``proj:shape`` / ``proj:transform`` rewritten: 10 m bands at 360 m,
SCL at twice that), served by a blob server that wants a valid SAS token from the emulator's
token API. ``TILER_AZURE_BLOB_ENDPOINT`` sends the reads there; everything else (signing,
token cache, renewal, refusals) is the production code path. Tiles, points and exports equal
the oracle bit for bit; tokens never show in logs or responses.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
from fastapi.testclient import TestClient
from rasterio.transform import Affine
from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds
from rio_tiler.io import Reader
from support.oracle import naive_mosaic
from support.pc_emulator import BlobServer, TokenApi
from support.stac_files import SHARED, write_cog

from tiler.app import create_app
from tiler.settings import Settings

#: emulated services or a Dask cluster per test: end to end (pytest -m e2e)
pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")
ITEMS = SHARED / "stac_items" / "odc-stac" / "site2-2020_jun_jul-35MNM.geojson"
BANDS = ("B02", "B03", "B04", "SCL")
RES = 360.0  # the 10 m bands' pixel here (10980 px of 10 m = 305 px of 360 m)
KEY = "test-subscription-key"
CID = "sentinel-2-l2a"
QUALITY = "where(SCL == 4, 10000, 0) - B02"
OUT = "B04,B03,B02,SCL,quality,_index"


def _quality(v: dict[str, numpy.ndarray]) -> numpy.ndarray:
    return numpy.where(v["SCL"] == 4, 10000, 0) - v["B02"]


def _field(rng: numpy.random.Generator, size: int, factor: int, low: int, high: int) -> Any:
    coarse = rng.integers(low, high, (size // factor + 1, size // factor + 1))
    return numpy.kron(coarse, numpy.ones((factor, factor), dtype="int64"))[:size, :size]


def _build(root: Path) -> dict[str, Any]:
    """The items with rewritten proj fields, their COGs under root/{account}/{container}/."""
    doc = json.loads(ITEMS.read_text())
    rng = numpy.random.default_rng(35)
    local: dict[str, dict[str, Path]] = {}
    for n, feature in enumerate(doc["features"]):
        feature["assets"] = {k: feature["assets"][k] for k in BANDS}
        files = {}
        for key, asset in feature["assets"].items():
            res = 2 * RES if key == "SCL" else RES
            size = round(10980 * 10 / RES) if key != "SCL" else round(10980 * 10 / (2 * RES))
            x0, y0 = asset["proj:transform"][2], asset["proj:transform"][5]
            asset["proj:shape"] = [size, size]
            asset["proj:transform"] = [res, 0.0, x0, 0.0, -res, y0]
            if key == "SCL":
                data = _field(rng, size, 8, 0, 12).astype("uint8")
                data[data == 0] = 4  # SCL 0 is no-data: keep it to the swath edge below
            else:
                data = _field(rng, size, 4, 1, 5000).astype("uint16")
            if n % 3 == 0:  # a swath edge: no data west of a slanted line
                rows, cols = numpy.indices(data.shape)
                data[cols < (rows * 0.3 + size * 0.1)] = 0
            url = asset["href"].removeprefix("https://")
            account = url.split(".", 1)[0]
            path = root / account / url.split("/", 1)[1]
            write_cog(
                path, data, transform=Affine(*asset["proj:transform"]), crs="EPSG:32735", nodata=0
            )
            files[key] = path
        local[feature["id"]] = files
    path = root / "pc-35MNM.json"
    path.write_text(json.dumps(doc))
    order = sorted(doc["features"], key=lambda f: (f["properties"]["datetime"], f["id"]))
    return {"path": path, "files": local, "order": [f["id"] for f in order], "root": root}


@pytest.fixture(scope="module")
def pc_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not ITEMS.exists():
        pytest.skip(f"{ITEMS} is not there")
    return _build(tmp_path_factory.mktemp("pc"))


@pytest.fixture
def emulator(pc_data: dict[str, Any]) -> Any:
    with TokenApi(key=KEY) as api, BlobServer(pc_data["root"], api) as blob:
        yield api, blob


def _client(pc_data: dict[str, Any], api: TokenApi, blob: BlobServer, **kw: Any) -> TestClient:
    settings = Settings(
        collections=[pc_data["path"]],
        tile_cache_bytes=0,
        read_threads=2,
        TILER_PC_SAS_URL=api.url,
        PC_SDK_SUBSCRIPTION_KEY=KEY,
        azure_blob_endpoint=blob.endpoint,
        **kw,
    )
    return TestClient(create_app(settings))


def _tiles() -> list[morecantile.Tile]:
    lon, lat = 27.45, -7.75
    tiles = [WMQ.tile(lon, lat, z) for z in (9, 10, 11, 12)]
    t = tiles[-1]
    return [*tiles, morecantile.Tile(t.x + 1, t.y, t.z), morecantile.Tile(t.x, t.y + 1, t.z)]


#: the oracle's tiles, per data folder and tile (several tests check the same tiles)
_ORACLE_TILES: dict[tuple[str, morecantile.Tile], tuple[Any, Any]] = {}


def _oracle_tile(pc_data: dict[str, Any], t: morecantile.Tile) -> tuple[Any, Any]:
    key = (str(pc_data["root"]), t)
    if key not in _ORACLE_TILES:
        _ORACLE_TILES[key] = _naive_tile(pc_data, t)
    return _ORACLE_TILES[key]


def _naive_tile(pc_data: dict[str, Any], t: morecantile.Tile) -> tuple[Any, Any]:
    reads = []
    for item_id in pc_data["order"]:
        out: dict[str, numpy.ma.MaskedArray] | None = {}
        for name, path in pc_data["files"][item_id].items():
            try:
                with Reader(str(path)) as src:
                    img = src.tile(t.x, t.y, t.z)
            except TileOutsideBounds:
                out = None
                break
            assert out is not None
            out[name] = numpy.ma.MaskedArray(img.array.data[0], mask=img.array.mask[0])
        reads.append(out)
    names = OUT.split(",")
    return naive_mosaic(reads, _quality, ["SCL", "B02"], names, [0.0] * len(reads))


def _compare(content: bytes, expected: tuple[Any, Any]) -> None:
    arr = numpy.load(io.BytesIO(content))
    data, valid = expected
    got_valid = arr[-1] != 0
    assert (got_valid == valid).all()
    assert valid.any()
    for i in range(data.shape[0]):
        assert (arr[i][valid].astype("float64") == data[i][valid]).all(), i


def _no_secret(api: TokenApi, *texts: str) -> None:
    secrets = [t.text for t in api.tokens] + [t.text.rsplit("sig=", 1)[1] for t in api.tokens]
    secrets.append(KEY)
    for text in texts:
        for secret in secrets:
            assert secret not in text


def _response_text(r: Any) -> str:
    return json.dumps(dict(r.headers)) + r.content.decode("latin-1")


def test_tiles_points_exports_equal_the_oracle(pc_data, emulator, caplog):
    api, blob = emulator
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with _client(pc_data, api, blob) as client:
        for t in _tiles():
            r = client.get(
                f"/collections/{CID}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy",
                params={"quality": QUALITY, "bands": OUT},
            )
            assert r.status_code == 200, r.text
            assert "x-items-skipped" not in r.headers
            _compare(r.content, _oracle_tile(pc_data, t))
            seen.append(_response_text(r))
        # a point: the winner and values of the per-item point reads
        lon, lat = 27.43, -7.71
        r = client.get(
            f"/collections/{CID}/point/{lon},{lat}",
            params={"quality": QUALITY, "bands": "B04,SCL,quality"},
        )
        assert r.status_code == 200, r.text
        seen.append(_response_text(r))
        body = r.json()
        best, best_q = None, None
        for i, item_id in enumerate(pc_data["order"]):
            vals = {}
            for name in ("SCL", "B02", "B04"):
                try:
                    with Reader(str(pc_data["files"][item_id][name])) as src:
                        pt = src.point(lon, lat)
                except PointOutsideBounds:
                    vals = None
                    break
                vals[name] = None if pt.array.mask[0] else float(pt.array.data[0])
            q = None
            if vals and vals["SCL"] is not None and vals["B02"] is not None:
                q = float(_quality({k: numpy.float64(v) for k, v in vals.items() if v}))
            assert body["items"][i]["id"] == item_id
            assert body["items"][i]["quality"] == q
            if q is not None and (best_q is None or q > best_q):
                best, best_q = i, q
        assert best is not None
        assert body["winner"]["id"] == pc_data["order"][best]
        # an export on the items' own UTM grid, SCL upsampled as each band is
        bbox = (520000.0, 9130000.0, 560000.0, 9170000.0)
        w = h = 200
        r = client.get(
            f"/collections/{CID}/bbox/{','.join(map(str, bbox))}/{w}x{h}.npy",
            params={
                "quality": QUALITY,
                "bands": OUT,
                "coord_crs": "EPSG:32735",
                "dst_crs": "EPSG:32735",
            },
        )
        assert r.status_code == 200, r.text
        seen.append(_response_text(r))
        reads = []
        for item_id in pc_data["order"]:
            out = {}
            for name, path in pc_data["files"][item_id].items():
                with Reader(str(path)) as src:
                    img = src.part(bbox, dst_crs=src.crs, bounds_crs=src.crs, width=w, height=h)
                out[name] = numpy.ma.MaskedArray(img.array.data[0], mask=img.array.mask[0])
            reads.append(out)
        expected = naive_mosaic(reads, _quality, ["SCL", "B02"], OUT.split(","), [0.0] * 13)
        _compare(r.content, expected)
    assert blob.denied == 0
    assert set(api.keys_seen) == {KEY}
    assert sum(api.requests.values()) == 1  # one token for the container, reused
    _no_secret(api, *seen, *(rec.getMessage() for rec in caplog.records))


def test_a_token_that_expires_mid_run_is_renewed(pc_data, emulator, caplog):
    api, blob = emulator
    # renewed after 3 s (half its life): longer than a tile's reads take on a loaded machine
    # (with 1.5 s, a read and its one retry both outlived their tokens under CI's load)
    api.ttl = 6.0
    caplog.set_level(logging.DEBUG)
    seen = []
    tiles = _tiles()
    with _client(pc_data, api, blob) as client:
        end = time.monotonic() + 13.0  # past two renewals
        n = 0
        while time.monotonic() < end or n < len(tiles):
            t = tiles[n % len(tiles)]
            r = client.get(
                f"/collections/{CID}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy",
                params={"quality": QUALITY, "bands": OUT},
            )
            assert r.status_code == 200, r.text
            assert "x-items-skipped" not in r.headers, r.headers["x-items-skipped"]
            if n < len(tiles):
                _compare(r.content, _oracle_tile(pc_data, t))
            seen.append(_response_text(r))
            n += 1
            time.sleep(0.1)
    # renewed when half its life is left; a read that outlived its token anyway (6 s) was
    # refused by the blob server and tried again with the new one: no item was ever skipped
    assert sum(api.requests.values()) >= 3
    _no_secret(api, *seen, *(rec.getMessage() for rec in caplog.records))


def test_a_refused_token_is_renewed_once_and_the_read_retried(pc_data, emulator, caplog):
    api, blob = emulator
    caplog.set_level(logging.DEBUG)
    first, t = _tiles()[3], _tiles()[4]
    params = {"quality": QUALITY, "bands": OUT}
    with _client(pc_data, api, blob) as client:
        path = f"/collections/{CID}/tiles/WebMercatorQuad/{first.z}/{first.x}/{first.y}.npy"
        assert client.get(path, params=params).status_code == 200
        api.revoke(reissue=True)  # the tiler still holds the old token, for 45 minutes
        path = f"/collections/{CID}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text
        assert "x-items-skipped" not in r.headers
        _compare(r.content, _oracle_tile(pc_data, t))
    assert blob.denied > 0
    assert sum(api.requests.values()) == 2
    _no_secret(api, _response_text(r), *(rec.getMessage() for rec in caplog.records))


def test_every_item_refused_is_a_502_naming_the_host(pc_data, emulator, caplog):
    api, blob = emulator
    caplog.set_level(logging.DEBUG)
    first, t = _tiles()[3], _tiles()[5]
    texts = []
    with _client(pc_data, api, blob) as client:
        path = f"/collections/{CID}/tiles/WebMercatorQuad/{first.z}/{first.x}/{first.y}.png"
        assert client.get(path, params={"quality": QUALITY}).status_code == 200
        api.revoke(reissue=False)  # access withdrawn: every token the API gives is refused
        for path in (
            f"/collections/{CID}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png",
            f"/collections/{CID}/point/27.43,-7.71",
            f"/collections/{CID}/bbox/27.3,-7.9,27.5,-7.7/64x64.tif",
        ):
            r = client.get(path, params={"quality": QUALITY, "bands": "B04,B03,B02"})
            assert r.status_code == 502, (path, r.status_code, r.text[:300])
            detail = r.json()["detail"]
            assert "sentinel2l2a01.blob.core.windows.net" in detail
            assert "credentials are missing, expired or refused" in detail
            texts.append(_response_text(r))
    assert api.tokens and blob.denied > 0
    _no_secret(api, *texts, *(rec.getMessage() for rec in caplog.records))


def test_a_partial_refusal_is_a_skip(pc_data, emulator):
    api, blob = emulator
    t = _tiles()[2]
    victim = pc_data["order"][4]
    scl = pc_data["files"][victim]["SCL"]
    blob.faults[str(scl.relative_to(pc_data["root"]))] = "403"
    with _client(pc_data, api, blob) as client:
        r = client.get(
            f"/collections/{CID}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy",
            params={"quality": QUALITY, "bands": OUT},
        )
    assert r.status_code == 200, r.text
    skipped = r.headers["x-items-skipped"]
    assert victim in skipped and "access denied" in skipped
    _no_secret(api, _response_text(r))


def test_tilejson_reads_the_native_zoom_through_signed_urls(pc_data, emulator, caplog):
    """TileJSON's maxzoom comes from a sample item's file, opened signed like reads (an
    unsigned open is refused by the blob server and would fall back to the matrix set's
    maxzoom, 24); no token in the log."""
    api, blob = emulator
    caplog.set_level(logging.DEBUG)
    with _client(pc_data, api, blob) as client:
        r = client.get(f"/collections/{CID}/WebMercatorQuad/tilejson.json")
        assert r.status_code == 200, r.text
        assert r.json()["maxzoom"] < 24
        _no_secret(api, r.text, *(rec.getMessage() for rec in caplog.records))


@pytest.mark.e2e
def test_through_stac_fastapi_pgstac_tiles_equal_the_file_collection(pc_data, emulator, pgstac):
    """The same Planetary Computer items loaded into PgSTAC (``tiler load``) and served by
    stac-fastapi-pgstac: hrefs still signed at open time, tiles byte-identical to the file
    collection's (which equal the oracle above)."""
    from click.testing import CliRunner
    from support.stacapi_server import stac_api

    from tiler.cli import cli

    api, blob = emulator
    db = "pc_emulated"
    pgstac.create_database(db)
    try:
        loaded = CliRunner().invoke(
            cli, ["load", str(pc_data["path"]), "--dsn", pgstac.dsn_for(db)]
        )
        assert loaded.exit_code == 0, loaded.output
        with stac_api(pgstac.host, pgstac.port, db, "sort,filter,fields,pagination") as root:
            url = f"{root}/collections/{CID}"
            with (
                _client(pc_data, api, blob) as files,
                TestClient(
                    create_app(
                        Settings(
                            collections=[url],
                            tile_cache_bytes=0,
                            read_threads=2,
                            TILER_PC_SAS_URL=api.url,
                            PC_SDK_SUBSCRIPTION_KEY=KEY,
                            azure_blob_endpoint=blob.endpoint,
                        )
                    )
                ) as remote,
            ):
                for t in _tiles():
                    path = f"/collections/{CID}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
                    params = {"quality": QUALITY, "bands": OUT}
                    a, b = files.get(path, params=params), remote.get(path, params=params)
                    assert a.status_code == b.status_code == 200, (a.text, b.text)
                    assert "x-items-skipped" not in b.headers
                    assert a.content == b.content, t
                    _no_secret(api, _response_text(b))
    finally:
        pgstac.drop_database(db)
