"""A STAC API that misbehaves: errors, timeouts, nonsense, endless paging, and down at start.

The API is a small real HTTP server on loopback (started here) that speaks the STAC API
protocol with the synthetic collection's items and misbehaves as a test asks; the server
under test talks to it with pystac-client and requests, as it would to any API.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import morecantile
import pytest
from fastapi.testclient import TestClient
from support.net import free_port, http_server, serve_in_thread

from tiler.app import create_app
from tiler.settings import Settings

pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")
CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
]


class FakeApi:
    """State of the API: its items, its mode, what it was asked."""

    def __init__(self, items: list[dict[str, Any]], bbox: list[float]) -> None:
        self.items = items
        self.bbox = bbox
        self.mode = "ok"
        self.searches = 0
        self.headers: list[dict[str, str]] = []


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _root(self) -> str:
            return f"http://{self.headers['Host']}"

        def do_GET(self) -> None:  # noqa: N802
            api.headers.append(dict(self.headers))
            root = self._root()
            if self.path in ("/", ""):
                self._send(
                    200,
                    {
                        "type": "Catalog",
                        "id": "fake",
                        "description": "a misbehaving API",
                        "stac_version": "1.0.0",
                        "conformsTo": CONFORMS,
                        "links": [
                            {"rel": "self", "href": f"{root}/"},
                            {"rel": "root", "href": f"{root}/"},
                            {
                                "rel": "search",
                                "type": "application/geo+json",
                                "href": f"{root}/search",
                                "method": "POST",
                            },
                            {"rel": "data", "href": f"{root}/collections"},
                        ],
                    },
                )
            elif self.path == "/conformance":
                self._send(200, {"conformsTo": CONFORMS})
            elif self.path == "/collections/test":
                self._send(
                    200,
                    {
                        "type": "Collection",
                        "id": "test",
                        "description": "synthetic",
                        "license": "other",
                        "stac_version": "1.0.0",
                        "extent": {
                            "spatial": {"bbox": [api.bbox]},
                            "temporal": {"interval": [[None, None]]},
                        },
                        "links": [],
                    },
                )
            else:
                self._send(404, {"code": "NotFound", "description": f"{self.path} not found"})

        def do_POST(self) -> None:  # noqa: N802
            api.headers.append(dict(self.headers))
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            api.searches += 1
            if api.mode == "error500":
                self._send(500, {"code": "Internal", "description": "database exploded"})
            elif api.mode == "slow":
                time.sleep(3)
                self._send(200, {"type": "FeatureCollection", "features": []})
            elif api.mode == "malformed":
                self._send(200, None, raw=b'{"type": "FeatureCollection", "features": [')
            elif api.mode == "filter-error":
                self._send(400, {"code": "BadRequest", "description": "unsupported filter op"})
            elif api.mode == "not-stac":
                self._send(200, {"type": "FeatureCollection", "features": [{"id": 3}]})
            elif api.mode == "endless":
                token = int(body.get("token") or 0)
                page = {
                    "type": "FeatureCollection",
                    "features": api.items[:1],
                    "links": [
                        {
                            "rel": "next",
                            "href": f"{self._root()}/search",
                            "method": "POST",
                            "body": {**body, "token": str(token + 1)},
                        }
                    ],
                }
                self._send(200, page)
            else:
                self._send(200, {"type": "FeatureCollection", "features": api.items, "links": []})

    return Handler


def _serve(api: FakeApi, port: int = 0) -> ThreadingHTTPServer:
    return serve_in_thread(http_server(_handler(api), port))


@pytest.fixture(scope="module")
def fake(synthetic):
    doc = json.loads(synthetic["path"].read_text())
    items = [{**f, "collection": "test"} for f in doc["features"]]
    lons = [c[0] for f in items for c in f["geometry"]["coordinates"][0]]
    lats = [c[1] for f in items for c in f["geometry"]["coordinates"][0]]
    api = FakeApi(items, [min(lons), min(lats), max(lons), max(lats)])
    server = _serve(api)
    yield api, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def client(fake):
    api, root = fake
    api.mode = "ok"
    settings = Settings(
        collections=[f"{root}/collections/test"],
        stac_api_timeout=1,
        search_cache_ttl=0,
        tile_cache_bytes=0,
        stac_api_headers={"Authorization": "Bearer t0ken-s3cret"},
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _tile_path(c: TestClient) -> str:
    w, s, e, n = c.get("/collections/test").json()["bounds"]
    t = WMQ.tile((w + e) / 2, (s + n) / 2, 15)
    return f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy?quality=q"


def test_a_working_api_serves_tiles_and_gets_the_configured_headers(fake, client):
    api, _ = fake
    r = client.get(_tile_path(client))
    assert r.status_code == 200, r.text
    assert any(h.get("Authorization") == "Bearer t0ken-s3cret" for h in api.headers)


@pytest.mark.parametrize(
    ("mode", "status", "says"),
    [
        pytest.param("error500", 502, "failed the item search", id="api-answers-500"),
        pytest.param("slow", 504, "did not answer", id="api-times-out"),
        pytest.param("malformed", 502, "failed the item search", id="malformed-json"),
        pytest.param("filter-error", 400, "rejected", id="filter-rejected-by-the-api"),
        pytest.param("not-stac", 502, "not STAC", id="items-that-are-not-stac"),
        pytest.param("endless", 502, "paging did not end", id="endless-paging"),
    ],
)
def test_remote_faults_answer_json_within_bounded_time(fake, client, caplog, mode, status, says):
    api, _ = fake
    path = _tile_path(client)
    api.mode = mode
    r = client.get(path + "&filter=eo:cloud_cover < 50")
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]
    assert "t0ken-s3cret" not in r.text + caplog.text
    api.mode = "ok"
    assert client.get("/healthz").status_code == 200  # the server goes on


def test_an_unknown_collection_url_is_unavailable_not_a_crash(fake):
    _, root = fake
    with TestClient(create_app(Settings(collections=[f"{root}/collections/nope"]))) as c:
        listed = c.get("/collections").json()["collections"]
        assert listed[0]["id"] == "nope" and listed[0]["available"] is False
        assert c.get("/collections/nope").status_code == 503
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200  # live: the process answers


def test_an_api_down_at_start_does_not_stop_the_server_and_recovers(fake):
    api, _ = fake
    port = free_port()  # nothing listens there yet
    url = f"http://127.0.0.1:{port}/collections/test"
    settings = Settings(collections=[url], stac_api_timeout=1, search_cache_ttl=0)
    with TestClient(create_app(settings)) as c:
        assert c.get("/collections").json()["collections"][0]["available"] is False
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200
        server = _serve(api, port)
        try:
            assert c.get("/readyz").status_code == 200
            assert c.get("/collections/test").status_code == 200
            assert c.get(_tile_path(c)).status_code == 200
        finally:
            server.shutdown()


def test_a_collection_url_that_is_not_one_fails_clearly_at_start():
    from tiler.errors import CollectionLoadError

    with pytest.raises(CollectionLoadError, match="not a STAC API collection URL"):
        create_app(Settings(collections=["https://example.invalid/stac/v1"]))
