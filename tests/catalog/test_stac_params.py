"""One ``Search`` -> STAC item-search body, shared by the PgSTAC and STAC API catalogues."""

from __future__ import annotations

import cql2
import pytest
from shapely.geometry import box, mapping

from tiler.catalog.filters import Search, make_search
from tiler.catalog.stac_params import sortby_keys, stac_search_body


def test_an_empty_search_names_the_collection_and_the_default_order() -> None:
    assert stac_search_body("c", Search()) == {
        "collections": ["c"],
        "sortby": [
            {"field": "datetime", "direction": "asc"},
            {"field": "id", "direction": "asc"},
        ],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-06-02/2021-06-20", "2021-06-02T00:00:00Z/2021-06-20T23:59:59.999999Z"),
        ("2021-06-02T10:00:00+02:00/..", "2021-06-02T08:00:00Z/.."),
        ("../2021-06-20T12:30:00.5Z", "../2021-06-20T12:30:00.500000Z"),
        ("2021-06-02T10:00:00Z", "2021-06-02T10:00:00Z/2021-06-02T10:00:00Z"),
    ],
)
def test_datetimes_are_rfc3339_intervals_in_utc_ending_in_z(text: str, expected: str) -> None:
    body = stac_search_body("c", make_search(datetime=text))
    assert body["datetime"] == expected
    assert "+00:00" not in body["datetime"]


def test_geometry_is_intersects_and_without_it_the_bbox_is_sent() -> None:
    search = make_search(bbox="1,2,3,4")
    assert stac_search_body("c", search)["bbox"] == [1.0, 2.0, 3.0, 4.0]
    tile = box(1.5, 2.5, 2.5, 3.5)
    body = stac_search_body("c", search, tile)
    assert body["intersects"] == mapping(tile)
    assert "bbox" not in body


def test_ids_are_sorted_and_the_filter_is_cql2_json() -> None:
    text = "eo:cloud_cover < 20 AND platform LIKE '%2b'"
    body = stac_search_body("c", make_search(ids="b,a,c", filter=text))
    assert body["ids"] == ["a", "b", "c"]
    assert body["filter"] == cql2.Expr(text).to_json()
    assert body["filter-lang"] == "cql2-json"


def test_sortby_keeps_the_keys_and_ends_with_the_id() -> None:
    search = make_search(sortby="-eo:cloud_cover,platform")
    assert stac_search_body("c", search)["sortby"] == sortby_keys(search.sortby)
    assert sortby_keys(search.sortby) == [
        {"field": "eo:cloud_cover", "direction": "desc"},
        {"field": "platform", "direction": "asc"},
        {"field": "id", "direction": "asc"},
    ]
