"""The one search template and description of remote catalogues (tiler/catalog/remote.py).

A fake source that answers every item as a candidate (a superset, as a source that
cannot filter does) must select exactly what the in-memory catalogue selects, in its
order; searches are cached; the description comes from the collection document.
"""

from __future__ import annotations

from typing import Any

import pytest
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from tiler.catalog.base import ItemPage
from tiler.catalog.collection_doc import collection_info, described
from tiler.catalog.filters import Search, make_search
from tiler.catalog.memory import MemoryCatalog
from tiler.catalog.models import Item
from tiler.catalog.remote import RemoteCatalog
from tiler.errors import TooManyItems


def _doc(n: int) -> dict[str, Any]:
    x = n % 4
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"it-{n:02d}",
        "geometry": box(x, 0, x + 1.5, 1).__geo_interface__,
        "bbox": [x, 0, x + 1.5, 1],
        "properties": {
            "datetime": f"2021-06-{1 + n % 5:02d}T10:00:00Z",
            "eo:cloud_cover": (n * 37) % 100,
            "platform": "sentinel-2a" if n % 2 else "sentinel-2b",
        },
        "assets": {"B04": {"href": f"/data/{n}/B04.tif", "type": "image/tiff"}},
        "links": [],
    }


DOCS = [_doc(n) for n in range(20)]


class Fake(RemoteCatalog):
    """Answers every item of DOCS as a candidate, whatever the search."""

    def __init__(self, doc: dict[str, Any], cache_ttl: float = 300) -> None:
        super().__init__("fake", cache_ttl, 1000)
        self.doc = doc
        self.fetched = 0

    def _candidates(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None
    ) -> list[Item]:
        self.fetched += 1
        return self._parse(reversed(DOCS))  # any order: the template orders

    def _document(self) -> dict[str, Any]:
        return self.doc

    def _count(self) -> int:
        return len(DOCS)

    def _bands(self, doc: dict[str, Any]) -> list[str]:
        return ["from-items"]

    def page(self, search: Search, limit: int, offset: int) -> ItemPage:
        raise NotImplementedError

    def sample(self) -> Item | None:
        return None


@pytest.fixture(scope="module")
def memory() -> MemoryCatalog:
    return MemoryCatalog("fake", Fake({})._parse(DOCS))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sortby": "-eo:cloud_cover"},
        {"sortby": "platform,-datetime"},
        {"datetime": "2021-06-02/2021-06-03"},
        {"ids": "it-03,it-07,it-11,nope"},
        {"filter": "eo:cloud_cover < 50 AND platform = 'sentinel-2a'"},
        {"bbox": "0.2,0.2,1.2,0.8"},
    ],
)
@pytest.mark.parametrize("geometry", [None, box(2.2, 0.1, 2.4, 0.2)])
def test_the_selection_and_order_are_the_memory_catalogues(
    memory: MemoryCatalog, params: dict[str, str], geometry: BaseGeometry | None
) -> None:
    search = make_search(**params)
    expected = [it.id for it in memory.search(search, geometry)]
    assert [it.id for it in Fake({}).search(search, geometry)] == expected


def test_a_search_is_fetched_once_while_cached() -> None:
    cached, uncached = Fake({}), Fake({}, cache_ttl=0)
    search = make_search(sortby="-eo:cloud_cover")
    for catalog in (cached, uncached):
        first = catalog.search(search, box(0, 0, 1, 1))
        assert [it.id for it in catalog.search(search, box(0, 0, 1, 1))] == [it.id for it in first]
    assert (cached.fetched, uncached.fetched) == (1, 2)
    cached.search(search, box(0, 0, 2, 1))  # another area is another search
    assert cached.fetched == 2


def test_a_bbox_outside_the_area_selects_nothing_without_asking_the_source() -> None:
    catalog = Fake({})
    assert catalog.search(make_search(bbox="10,10,11,11"), box(0, 0, 1, 1)) == []
    assert catalog.fetched == 0


def test_more_selected_items_than_the_limit_is_too_many(memory: MemoryCatalog) -> None:
    search = make_search(filter="platform = 'sentinel-2a'")
    matched = len(memory.search(search, None))
    assert len(Fake({}).search(search, None, limit=matched)) == matched
    with pytest.raises(TooManyItems) as caught:
        Fake({}).search(search, None, limit=matched - 1)
    assert (caught.value.matched, caught.value.limit) == (matched, matched - 1)


COLLECTION: dict[str, Any] = {
    "type": "Collection",
    "id": "fake",
    "title": "A fake",
    "description": "For tests.",
    "extent": {
        "spatial": {"bbox": [[0, 0, 5.5, 1]]},
        "temporal": {"interval": [["2021-06-01T10:00:00Z", None]]},
    },
    "renders": {"red": {"bands": ["B04"]}},
    "summaries": {"platform": ["sentinel-2a", "sentinel-2b"]},
}


def test_the_description_comes_from_the_document() -> None:
    info = Fake({**COLLECTION, "qualitymosaic:bands": ["B04", "SCL"]}).info()
    assert info == collection_info(COLLECTION, "fake", ["B04", "SCL"], 20)
    assert (info.title, info.description) == ("A fake", "For tests.")
    assert info.bounds == (0.0, 0.0, 5.5, 1.0)
    assert info.interval == ("2021-06-01T10:00:00Z", None)
    assert info.renders == {"red": {"bands": ["B04"]}}
    assert info.summaries == {"platform": ["sentinel-2a", "sentinel-2b"]}
    assert info.item_count == 20


def test_undeclared_bands_come_from_the_items_and_a_bare_document_reads_as_absent() -> None:
    info = Fake({"id": "fake", "extent": {"spatial": {"bbox": "nonsense"}}}).info()
    assert info.bands == ["from-items"]
    assert info.bounds == (-180.0, -90.0, 180.0, 90.0)
    assert info.interval == (None, None)
    assert (info.title, info.description, info.renders, info.summaries) == (None, None, {}, {})
    assert described({}) == {"title": None, "description": None, "renders": {}}
