"""A lon/lat bbox with minx > maxx crosses the antimeridian (STAC API): both sides match."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import MultiPolygon

from tiler.catalog.filters import make_search
from tiler.catalog.loaders import load_collection
from tiler.catalog.stac_params import stac_search_body


def _item(item_id: str, lon: float) -> dict[str, Any]:
    ring = [[lon, 0], [lon + 1, 0], [lon + 1, 1], [lon, 1], [lon, 0]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [lon, 0, lon + 1, 1],
        "properties": {"datetime": "2020-07-01T00:00:00Z"},
        "links": [],
        "assets": {"B04": {"href": f"https://example.com/{item_id}.tif", "type": "image/tiff"}},
    }


@pytest.fixture
def catalog(tmp_path: Path) -> Any:
    items = [_item("east", 178.5), _item("middle", 0.0), _item("west", -179.5)]
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return load_collection(path)


def test_a_bbox_across_the_antimeridian_is_two_boxes() -> None:
    area = make_search(bbox="170,-10,-170,10").area
    assert isinstance(area, MultiPolygon)
    assert sorted(g.bounds for g in area.geoms) == [(-180, -10, -170, 10), (170, -10, 180, 10)]


def test_a_bbox_across_the_antimeridian_selects_items_on_both_sides(catalog: Any) -> None:
    chosen = catalog.search(make_search(bbox="170,-10,-170,10"), None)
    assert sorted(item.id for item in chosen) == ["east", "west"]
    assert [i.id for i in catalog.search(make_search(bbox="-10,-10,10,10"), None)] == ["middle"]


def test_a_stac_search_across_the_antimeridian_sends_its_two_boxes() -> None:
    body = stac_search_body("c", make_search(bbox="170,-10,-170,10"))
    assert "bbox" not in body and body["intersects"]["type"] == "MultiPolygon"
    assert stac_search_body("c", make_search(bbox="1,2,3,4"))["bbox"] == [1, 2, 3, 4]
