"""/metrics counts the requests and bytes GDAL sends to remote files, by scheme.

The counts come from GDAL's own network statistics (tiler.engine.netstats); they must move
by exactly what the storage server saw: the range server on loopback counts the requests
and body bytes it answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.remote_servers import RangeServer, environ, restore, rewrite_hrefs, s3_server
from test_metrics import value

from tiler.app import create_app
from tiler.engine.netstats import parse
from tiler.settings import Settings


def _client(path: Path) -> TestClient:
    settings = Settings(collections=[str(path)], read_threads=2, tile_cache_bytes=0)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _storage(client: TestClient, scheme: str) -> tuple[float, float]:
    text = client.get("/metrics").text
    return (
        value(text, "tiler_storage_requests_total", scheme=scheme),
        value(text, "tiler_storage_bytes_total", scheme=scheme),
    )


def test_storage_counts_equal_the_http_servers(
    synthetic: dict[str, Any], tile_paths: list[str], tmp_path: Path
) -> None:
    with RangeServer(synthetic["root"]) as server:
        # a fresh URL prefix: no GDAL cache of this process knows these files
        path = rewrite_hrefs(synthetic["path"], tmp_path / "http.json", server.fresh())
        with _client(path) as client:
            requests, sent = _storage(client, "http")
            before = server.requests, server.bytes
            for tile in tile_paths:
                assert client.get(tile).status_code == 200
            after = _storage(client, "http")
            asked, answered = server.requests - before[0], server.bytes - before[1]
            assert asked > 0 and answered > 0
            assert after == (requests + asked, sent + answered)
            assert _storage(client, "s3") == (0, 0)
            # nothing read since: the next scrape adds nothing
            assert _storage(client, "http") == after


def test_gdal_json_parsed_per_scheme() -> None:
    document = """{"methods": {"GET": {"count": 9}}, "handlers": {
        "vsicurl": {"methods": {"HEAD": {"count": 1}, "GET": {"count": 2,
                    "downloaded_bytes": 300}}, "files": {}},
        "vsis3": {"methods": {"GET": {"count": 4, "downloaded_bytes": 50}}},
        "vsinewthing": {"methods": {"POST": {"count": 1, "downloaded_bytes": 7}}}}}"""
    counts = {k: (v.requests, v.bytes) for k, v in parse(document).items()}
    assert counts == {"http": (3, 300), "s3": (4, 50), "newthing": (1, 7)}
    assert parse("{}") == {}


@pytest.mark.e2e
def test_storage_counts_of_s3(
    synthetic: dict[str, Any], tile_paths: list[str], tmp_path: Path
) -> None:
    root = Path(synthetic["root"])
    files = {str(p.relative_to(root)): p for p in root.rglob("*.tif")}
    with s3_server(files, bucket="metered") as settings:
        old = environ(settings)
        try:
            path = rewrite_hrefs(synthetic["path"], tmp_path / "s3.json", "s3://metered")
            with _client(path) as client:
                http_before = _storage(client, "http")
                assert _storage(client, "s3") == (0, 0)
                for tile in tile_paths:
                    assert client.get(tile).status_code == 200
                requests, received = _storage(client, "s3")
                assert requests >= 1 and received >= 1
                assert _storage(client, "http") == http_before
        finally:
            restore(old)
