"""Cheap requests that asked for expensive work: request bodies, output band counts, export
sizes and log volume are bounded before any work, and answered within the deadline."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.hostile import LAT, LON, count_work, refused

from tiler.api.body import BodyLimit
from tiler.app import create_app
from tiler.settings import Settings

FEATURE = "/collections/demo/feature?format=png&width=32&height=32"
TILE = "/collections/demo/tiles/WebMercatorQuad/14/3494/6195.png"
MB = 1024 * 1024


@pytest.fixture
def work(client: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What reached the routes' work: the engine's calls."""
    calls: list[str] = []
    engine = client.app.state.engine
    for name in ("mosaic", "point"):
        monkeypatch.setattr(engine, name, lambda *a, _n=name, **k: calls.append(_n))
    return calls


def _big_feature(size: int) -> bytes:
    """A valid GeoJSON Feature (a polygon around the demo) padded to ``size`` bytes."""
    feature = _feature_json()
    feature["properties"] = {"pad": ""}
    empty = len(json.dumps(feature))
    feature["properties"] = {"pad": "x" * (size - empty)}
    return json.dumps(feature).encode()


def test_a_50_mb_geojson_body_is_413_before_it_is_read(client: Any, work: list[str]) -> None:
    body = _big_feature(50 * MB)
    r = client.post(FEATURE, content=body, headers={"content-type": "application/json"})
    refused(r, 413, "exceeds the limit of 1048576 bytes", "TILER_MAX_BODY_BYTES")
    assert r.headers["Cache-Control"] == "no-store"
    assert work == []
    assert client.get("/healthz").status_code == 200


def test_a_body_within_the_limit_is_served(client: Any) -> None:
    r = client.post(
        FEATURE, content=_big_feature(MB - 1), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "image/png"


def _run_limit(limit: int, chunks: list[bytes], length: int | None = None) -> dict[str, Any]:
    """BodyLimit over an app that records the body it got, fed ``chunks`` (no
    Content-Length unless ``length``): the answer, the body and how many chunks were read."""
    got: dict[str, Any] = {"read": 0, "sent": []}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        got["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        i = got["read"]
        got["read"] += 1
        if i >= len(chunks):
            await asyncio.Event().wait()  # nothing more: the client waits for the answer
        return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

    async def send(message: dict[str, Any]) -> None:
        got["sent"].append(message)

    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
    asyncio.run(asyncio.wait_for(BodyLimit(app, limit)(scope, receive, send), 5))
    return got


def test_a_chunked_body_is_refused_once_it_passes_the_limit() -> None:
    got = _run_limit(2048, [b"x" * 1000] * 100)
    assert got["sent"][0]["status"] == 413
    assert got["read"] == 3  # stopped reading at the chunk that passed the limit
    assert "body" not in got  # the app never ran
    assert b"more than 3000 bytes exceeds the limit of 2048" in got["sent"][1]["body"]


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    got = _run_limit(2048, [b"x" * 4096], length=4096)
    assert got["sent"][0]["status"] == 413 and got["read"] == 0


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    got = _run_limit(2048, [b"a" * 1000, b"b" * 1000], length=2000)
    assert got["sent"][0]["status"] == 200
    assert got["body"] == b"a" * 1000 + b"b" * 1000


def test_the_413_is_documented_on_the_routes_that_take_a_body(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "413" in paths["/collections/{collection_id}/feature"]["post"]["responses"]
    assert "413" not in paths["/collections/{collection_id}"]["get"]["responses"]


def test_10000_band_names_are_a_fast_400(client: Any, work: list[str]) -> None:
    bands = ",".join(["B4"] * 10000)
    refused(client.get(TILE, params={"bands": bands}), 400, "at most 9")
    refused(client.get(f"/collections/demo/point/{LON},{LAT}", params={"bands": bands}), 400)
    refused(client.post(FEATURE + f"&bands={bands}", json=_feature_json()), 400, "at most 9")
    assert work == []


def _feature_json() -> dict[str, Any]:
    ring = [[LON - 0.001, LAT - 0.001], [LON + 0.001, LAT - 0.001], [LON, LAT + 0.001]]
    return {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


@pytest.fixture
def small_exports(demo_path: Path) -> Iterator[TestClient]:
    """A client whose export limit is 64 x 64 pixels."""
    settings = Settings(collections=[demo_path], read_threads=2, max_export_pixels=64 * 64)
    with TestClient(create_app(settings)) as c:
        yield count_work(c)


def test_a_4096_by_4096_export_is_refused_before_any_work(client: Any, work: list[str]) -> None:
    """It took 16 s and 1.3 GB (~80 B per pixel while computed): the default limit is
    2048 x 2048 (~320 MB), TILER_MAX_EXPORT_PIXELS raises it."""
    r = client.get("/collections/demo/bbox/-103.2,40.1,-103.1,40.2/4096x4096.png")
    refused(r, 400, "export of 4096x4096 = 16777216 px exceeds the limit of 4194304 px")
    r = client.post(FEATURE.replace("width=32&height=32", "width=4096&height=4096"), json={})
    refused(r, 400, "exceeds the limit of 4194304 px")
    r = client.get("/collections/demo/bbox/-103.2,40.1,-103.1,40.2/2049x2048.tif")
    refused(r, 400, "exceeds the limit")
    assert work == []


def test_the_export_limit_is_a_setting(small_exports: TestClient) -> None:
    refused(small_exports.get("/collections/demo/bbox/-104,39,-102,41/65x64.png"), 400, "4096 px")
    r = small_exports.get("/collections/demo/bbox/-104,39,-102,41/64x64.png")
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("url", "status"),
    [
        pytest.param("/collections/demo/bbox/-180,-100,180,100/256x256.png", 400, id="lat_100"),
        pytest.param("/collections/demo/bbox/-180,-90,180,90/256x256.png", 200, id="the_globe"),
        pytest.param(
            "/collections/demo/bbox/-180,-85,180,85/256x256.png?dst_crs=EPSG:3857",
            200,
            id="the_globe_in_mercator",
        ),
        pytest.param(
            "/collections/demo/bbox/-180,-90,180,90/256x256.png?dst_crs=EPSG:32613",
            400,
            id="the_globe_in_utm",
        ),
    ],
)
def test_an_export_of_the_whole_globe_logs_a_bounded_number_of_lines(
    client: Any, caplog: pytest.LogCaptureFixture, url: str, status: int
) -> None:
    """A /bbox/-180,-100,180,100 export wrote 236,543 log lines in 7 s: now a few at most
    (the level the server logs at: INFO)."""
    caplog.set_level(logging.INFO)
    r = client.get(url)
    assert r.status_code == status, r.text[:300]
    if status >= 400:
        refused(r, status, "outside the valid range")
    ours = [rec for rec in caplog.records if not rec.name.startswith("httpx")]
    assert len(ours) <= 5, [rec.getMessage()[:200] for rec in ours[:10]]


@pytest.mark.e2e  # a fresh child process (no warning filters of the test run)
def test_a_repeated_library_warning_is_logged_once() -> None:
    """rio-tiler warns per dataset opened (the demo has no overviews) and every
    ``catch_warnings()`` makes Python forget it: one load run logged 3,407 of them (6,814
    lines) in ~13,000 tiles. A server process (serve_app's configure_warnings) logs each
    distinct one once."""
    script = textwrap.dedent(
        """
        import logging, warnings
        from rio_tiler.errors import NoOverviewWarning
        from tiler.process import configure_warnings

        logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
        configure_warnings()
        configure_warnings()  # idempotent (every worker calls it once; tests may call twice)

        def open_dataset(text):
            warnings.warn(text, NoOverviewWarning)

        for _ in range(50):
            with warnings.catch_warnings():  # as rendering does per tile
                warnings.simplefilter("ignore", RuntimeWarning)
            open_dataset("The dataset has no Overviews.")
        open_dataset("another problem")
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "py.warnings" in line]
    assert len(lines) == 2, run.stderr[-2000:]
    assert "NoOverviewWarning: The dataset has no Overviews." in lines[0]
    assert "another problem" in lines[1]
