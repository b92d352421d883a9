"""Request ids: accepted or generated, on every answer, in error bodies and log records."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tiler.api.requests_log import RequestIdFilter, request_id, with_request_id


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog at INFO whose handler stamps the request id (as a server's handler does)."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    return caplog


def test_a_valid_id_is_kept_and_returned(make_client: Any, tile_paths: list[str]) -> None:
    client = make_client()
    for path in ("/collections", tile_paths[0], "/healthz", "/metrics", "/nope"):
        r = client.get(path, headers={"X-Request-ID": "abc-123_X.y"})
        assert r.headers["X-Request-ID"] == "abc-123_X.y", path


@pytest.mark.parametrize("sent", ["", "a b", "x" * 65, "<script>", "é", "a\\nb"])
def test_an_invalid_id_is_replaced(make_client: Any, sent: str) -> None:
    client = make_client()
    r = client.get("/collections", headers={"X-Request-ID": sent.encode("utf-8")})
    got = r.headers["X-Request-ID"]
    assert got != sent and len(got) == 32 and int(got, 16) >= 0


def test_an_id_is_generated_per_request(make_client: Any) -> None:
    client = make_client()
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_error_bodies_carry_the_id(make_client: Any, tile_paths: list[str]) -> None:
    client = make_client(max_in_flight=1, max_queue_wait=0)
    headers = {"X-Request-ID": "rid-1"}
    bad = client.get(tile_paths[0] + "&bands=nope", headers=headers)
    assert bad.status_code == 400 and bad.json()["request_id"] == "rid-1"
    assert "detail" in bad.json()
    missing = client.get("/collections/nope", headers=headers)
    assert missing.status_code == 404 and missing.json()["request_id"] == "rid-1"
    invalid = client.get(
        tile_paths[0] + "&tilesize=-1", headers={**headers, "Accept-Encoding": "gzip"}
    )
    assert invalid.status_code == 400 and invalid.json()["request_id"] == "rid-1"
    assert int(invalid.headers["content-length"]) >= 0
    client.app.state.gate.in_flight = 1  # busy: the admission middleware answers
    busy = client.get(tile_paths[1], headers=headers)
    client.app.state.gate.in_flight = 0
    assert busy.status_code == 503 and busy.json()["request_id"] == "rid-1"
    assert busy.headers["Retry-After"] and busy.headers["X-Request-ID"] == "rid-1"
    ok = client.get(tile_paths[0], headers=headers)
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"


def test_an_unexpected_exception_is_a_json_500_with_the_id(
    make_client: Any, tile_paths: list[str], records: pytest.LogCaptureFixture
) -> None:
    client = make_client()

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom at /secret/path")

    client.app.state.engine.mosaic = explode
    r = client.get(tile_paths[0], headers={"X-Request-ID": "rid-500"})
    assert r.status_code == 500 and r.headers["X-Request-ID"] == "rid-500"
    assert r.json() == {
        "detail": "internal error (RuntimeError); the server log has the details",
        "request_id": "rid-500",
    }
    access = [rec for rec in records.records if rec.name == "tiler.access"]
    assert access and access[-1].request_id == "rid-500" and access[-1].access["status"] == 500


def test_every_log_line_of_a_request_has_its_id(
    make_client: Any, tile_paths: list[str], records: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    records.clear()
    client.get(tile_paths[3], headers={"X-Request-ID": "rid-logs"})
    mine = [rec for rec in records.records if getattr(rec, "request_id", None) == "rid-logs"]
    names = {rec.name for rec in mine}
    assert {"tiler.api.tiles", "tiler.access"} <= names, names
    access = next(rec for rec in mine if rec.name == "tiler.access")
    assert access.access["group"] == "tile" and access.access["items_read"] >= 1
    assert access.access["cache"] == "miss" and access.access["collection"] == "test"
    client.get("/healthz")
    other = [rec for rec in records.records if rec.name == "tiler.access"][-1]
    assert other.request_id not in ("", "rid-logs")


def test_helpers() -> None:
    assert request_id(b"ok.id") == "ok.id"
    assert request_id(None) != request_id(None)
    assert with_request_id(b'{"detail": "x"}', "", "r") == b'{"detail": "x", "request_id": "r"}'
    assert with_request_id(b"not json", "", "r") is None
    assert with_request_id(b"[1]", "", "r") is None
    assert with_request_id(b"{}", "br", "r") is None
