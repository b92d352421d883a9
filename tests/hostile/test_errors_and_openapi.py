"""Errors show no paths or URLs, and the OpenAPI document describes the 400s the API answers
(not FastAPI's 422)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from rasterio.errors import RasterioIOError
from support.hostile import LAT, LON, json_error

from tiler.app import create_app
from tiler.catalog.loaders import load_collection
from tiler.catalog.memory import MemoryCatalog
from tiler.errors import redact
from tiler.settings import Settings

TILE = "/collections/demo/tiles/WebMercatorQuad/14/3494/6195.png"
SECRET = "/srv/private/data/scene.tif"


def test_no_operation_documents_422(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    responses = {
        (path, method): op["responses"]
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    assert responses
    assert [k for k, r in responses.items() if "422" in r] == []
    assert [k for k, r in responses.items() if "400" not in r] == []
    assert "HTTPValidationError" not in doc["components"]["schemas"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(TILE, {"tilesize": "-1"}, id="fastapi_validation"),
        pytest.param(TILE, {"resampling": "nonsense"}, id="enum_validation"),
        pytest.param(TILE, {"bands": "nope"}, id="our_validation"),
        pytest.param("/collections/demo/items", {"limit": "0"}, id="items_limit"),
    ],
)
def test_a_400_matches_the_documented_error_schema(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    doc = client.get("/openapi.json").json()
    route = (
        "/collections/{collection_id}/items"
        if "items" in path
        else ("/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}")
    )
    documented = doc["paths"][route]["get"]["responses"]["400"]
    ref = documented["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    r = client.get(path, params=params)
    assert r.status_code == 400
    jsonschema.validate(r.json(), schema)
    assert client.get("/healthz").status_code == 200


@pytest.fixture
def failing(demo_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """A client whose engine fails unexpectedly, naming a local file."""
    app = create_app(Settings(collections=[demo_path], tile_cache_bytes=0))

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RasterioIOError(f"{SECRET}: not recognized as a supported file format")

    monkeypatch.setattr(app.state.engine, "mosaic", fail)
    return TestClient(app, raise_server_exceptions=False)


def test_an_unexpected_failure_is_a_500_without_the_path(failing: TestClient) -> None:
    r = failing.get(TILE)
    json_error(r, 500, "internal error (RasterioIOError)", "server log")  # the engine failed
    assert "/srv" not in r.text
    assert failing.get("/healthz").status_code == 200


def test_a_skipped_item_shows_its_id_and_a_reason_never_the_path(demo_path: Path) -> None:
    collection = load_collection(demo_path)
    first = collection.items[0]
    bands = {k: dataclasses.replace(b, href=SECRET) for k, b in first.bands.items()}
    items = [dataclasses.replace(first, bands=bands), *collection.items[1:]]
    catalog = MemoryCatalog("demo", items, renders=collection.renders)
    with TestClient(create_app(Settings(collections=[demo_path]), {"demo": catalog})) as c:
        point = c.get(f"/collections/demo/point/{LON},{LAT}").json()
        tile = c.get(TILE)
    skipped = {it["id"]: it["skipped"] for it in point["items"] if it["skipped"]}
    assert list(skipped) == [first.id]
    assert "/srv" not in str(skipped) and "scene.tif" not in str(skipped)
    assert first.id in tile.headers.get("X-Items-Skipped", first.id)
    assert "/srv" not in tile.headers.get("X-Items-Skipped", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"RasterioIOError: {SECRET}: No such file or directory",
            "RasterioIOError: <path>: No such file or directory",
            id="absolute_path",
        ),
        pytest.param(
            "HTTP response code: 404 on https://bucket.example/a/b.tif?sig=1",
            "HTTP response code: 404 on <url>",
            id="url",
        ),
        pytest.param("'/vsis3/bucket/key.tif' not found", "'<url>' not found", id="vsi_path"),
        pytest.param(
            "RasterioIOError: file not found", "RasterioIOError: file not found", id="already_clean"
        ),
        pytest.param(
            "timed out after 30 s (1/2 reads)",
            "timed out after 30 s (1/2 reads)",
            id="a_ratio_is_not_a_path",
        ),
    ],
)
def test_redact_replaces_paths_and_urls(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_long_invalid_value_is_quoted_in_part_never_echoed_whole(client: TestClient) -> None:
    r = client.get(TILE, params={"tilesize": "y" * 30000, "min": "z" * 30000})
    assert r.status_code == 400
    assert len(r.content) < 3000
    assert all(len(str(e.get("input", ""))) <= 203 for e in r.json().get("errors", []))
    r = client.get(TILE, params={"tilesize": "y" * 30000})
    assert r.status_code == 400 and len(r.content) < 3000
