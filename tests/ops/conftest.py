"""Shared fixtures of the operations tests: an app over the synthetic collection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import morecantile
import pytest
from fastapi.testclient import TestClient

from tiler.app import create_app
from tiler.catalog.loaders import load_collection
from tiler.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture
def make_client(synthetic: dict[str, Any]) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)``: a TestClient of the synthetic collection, closed after."""
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        app = create_app(Settings(collections=[synthetic["path"]], read_threads=2, **settings))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def tile_paths(synthetic: dict[str, Any]) -> list[str]:
    """Paths of distinct z15-z16 tiles over the synthetic collection's centre."""
    w, s, e, n = load_collection(synthetic["path"]).bounds
    tiles = [WMQ.tile((w + e) / 2, (s + n) / 2, z) for z in (15, 16)]
    paths = []
    for t in tiles:
        for dx in (0, 1):
            paths.append(
                f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x + dx}/{t.y}.png?quality=q"
            )
    return paths
