"""Fixtures of the hostile-input suite: a small demo collection and a client of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.hostile import count_work

from tiler.app import create_app
from tiler.settings import Settings
from tiler.tools.demo import create_demo


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo collection, small: 3 scenes of 128 x 128 pixels."""
    return create_demo(tmp_path_factory.mktemp("hostile") / "demo", size=128, scenes=3)


@pytest.fixture(scope="module")
def client(demo_path: Path) -> Iterator[TestClient]:
    """A client of the small demo recording the engine's calls per response
    (:func:`support.hostile.count_work`: :func:`~support.hostile.refused` checks there were
    none)."""
    with TestClient(create_app(Settings(collections=[demo_path], read_threads=2))) as c:
        warm_up(c)
        yield count_work(c)


def warm_up(client: TestClient) -> None:
    """A first refusal: what any first request costs (threads, lazy imports, PROJ's
    database: ~0.2-0.5 s) is not charged to the first test's deadline."""
    client.get("/collections/demo/point/0,100")
