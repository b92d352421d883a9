"""Liveness and readiness: /healthz while the process serves, /readyz with the catalogues."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tiler.app import create_app
from tiler.settings import Settings


class StacApi:
    """A small STAC API on loopback (root, conformance, one collection, search) to stop."""

    def __init__(self, items: list[dict[str, Any]], port: int) -> None:
        self.items = items
        self.port = port
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                root = f"http://127.0.0.1:{api.port}"
                conforms = [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                ]
                if self.path == "/":
                    self._send(
                        {
                            "type": "Catalog",
                            "id": "fake",
                            "description": "fake",
                            "stac_version": "1.0.0",
                            "conformsTo": conforms,
                            "links": [
                                {"rel": "self", "href": f"{root}/"},
                                {"rel": "root", "href": f"{root}/"},
                                {"rel": "search", "href": f"{root}/search", "method": "POST"},
                            ],
                        }
                    )
                elif self.path == "/conformance":
                    self._send({"conformsTo": conforms})
                else:
                    self._send(
                        {
                            "type": "Collection",
                            "id": "test",
                            "description": "synthetic",
                            "license": "other",
                            "stac_version": "1.0.0",
                            "extent": {
                                "spatial": {"bbox": [[-180, -90, 180, 90]]},
                                "temporal": {"interval": [[None, None]]},
                            },
                            "links": [],
                        }
                    )

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                self._send({"type": "FeatureCollection", "features": api.items, "links": []})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


@pytest.fixture
def api(synthetic: dict[str, Any]) -> Iterator[StacApi]:
    doc = json.loads(synthetic["path"].read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = StacApi([{**f, "collection": "test"} for f in doc["features"]], port)
    server.start()
    yield server
    if server.server is not None:
        server.stop()


def test_readiness_flips_with_the_catalogue_and_liveness_stays(api: StacApi) -> None:
    settings = Settings(
        collections=[f"http://127.0.0.1:{api.port}/collections/test"],
        stac_api_timeout=1,
        search_cache_ttl=0,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/readyz").json()["catalogs"]["test"]["status"] == "ok"
        api.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        assert down.json()["catalogs"]["test"]["status"] == "unavailable"
        assert down.headers["Cache-Control"] == "no-store"
        live = client.get("/healthz")
        assert live.status_code == 200 and live.json()["status"] == "ok"
        metrics = client.get("/metrics").text
        assert 'tiler_catalog_unavailable{kind="StacApiCatalog"} 1.0' in metrics
        api.start()
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200
        metrics = client.get("/metrics").text
        assert 'tiler_catalog_unavailable{kind="StacApiCatalog"} 0.0' in metrics


def test_an_api_down_at_start_is_live_but_not_ready(api: StacApi) -> None:
    api.stop()
    settings = Settings(
        collections=[f"http://127.0.0.1:{api.port}/collections/test"], stac_api_timeout=1
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
