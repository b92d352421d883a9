"""A request whose client has gone stops its work: no read, no render, at every stage."""

from __future__ import annotations

from typing import Any

import pytest
from rasterio.crs import CRS

from tiler.catalog.filters import Search
from tiler.catalog.loaders import load_collection
from tiler.engine import service
from tiler.engine.budget import Budget
from tiler.engine.expression import parse
from tiler.engine.grids import PartGrid
from tiler.engine.io import ReadOptions
from tiler.engine.service import Engine
from tiler.errors import RequestCancelled

BBOX = (500000.0, 5000000.0, 500640.0, 5000640.0)


@pytest.fixture
def engine() -> Any:
    engine = Engine(read_threads=2, item_timeout=30)
    yield engine
    engine.close()


def _mosaic(engine: Engine, path: Any, budget: Budget) -> Any:
    catalog = load_collection(path)
    crs = CRS.from_epsg(32633)
    grid = PartGrid(BBOX, crs, crs, 64, 64)
    quality = parse("q", catalog.info().bands)
    return engine.mosaic(catalog, Search(), grid, quality, ["a"], ReadOptions(), budget)


def test_a_request_cancelled_before_its_reads_reads_nothing(synthetic, engine) -> None:
    reads: list[str] = []
    real = engine.reader.read
    engine.reader.read = lambda item, *a, **k: reads.append(item.id) or real(item, *a, **k)
    budget = Budget()
    budget.cancel("client disconnected")
    with pytest.raises(RequestCancelled):
        _mosaic(engine, synthetic["path"], budget)
    assert reads == []


def test_a_request_cancelled_after_its_reads_returns_no_image(
    synthetic, engine, monkeypatch
) -> None:
    """Cancelled once every read is done (while the last pixels are decided): the mosaic
    raises instead of returning an image for the route to render and encode."""
    budget = Budget()
    real = service.quality_mosaic

    def then_leave(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        budget.cancel("client disconnected")
        return out

    monkeypatch.setattr(service, "quality_mosaic", then_leave)
    with pytest.raises(RequestCancelled):
        _mosaic(engine, synthetic["path"], budget)


def test_a_request_never_cancelled_gets_its_image(synthetic, engine) -> None:
    image, stats = _mosaic(engine, synthetic["path"], Budget())
    assert image.array.shape[1:] == (64, 64) and stats.read > 0
