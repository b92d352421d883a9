"""Selection in the in-memory catalogue (tiler.catalog.memory) against a naive loop."""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from pathlib import Path
from typing import Any

import cql2
import pytest
from shapely.geometry import box

from tiler.catalog.filters import (
    make_search,
)
from tiler.catalog.loaders import load_collection
from tiler.catalog.memory import MAX_CACHED_FILTERS, MAX_CACHED_RANKS, MemoryCatalog


def select(catalog, search, geom):
    return catalog.search(search, geom)


def fresh(catalog):
    """The same items in a new catalogue: no cached filter results nor sort ranks."""
    return MemoryCatalog(catalog.id, catalog.items)


UTC = dt.UTC


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _item(item_id: str, when: str, lon: float, lat: float, **props: Any) -> dict[str, Any]:
    ring = [[lon, lat], [lon + 1, lat], [lon + 1, lat + 1], [lon, lat + 1], [lon, lat]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [lon, lat, lon + 1, lat + 1],
        "properties": {"datetime": when, **props},
        "links": [],
        "assets": {"B04": {"href": f"https://example.com/{item_id}.tif", "type": "image/tiff"}},
    }


def _collection(tmp: Path, items: list[dict[str, Any]]):
    path = tmp / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return load_collection(path)


@pytest.fixture
def small(tmp_path):
    """Six items: ties in datetime, a missing cloud cover, two platforms, two places."""
    items = [
        _item("e", "2021-06-01T00:00:00Z", 0, 0, **{"eo:cloud_cover": 10.0, "platform": "s2a"}),
        _item("b", "2021-06-01T00:00:00Z", 0, 0, **{"eo:cloud_cover": 50.0, "platform": "s2b"}),
        _item("a", "2021-06-03T12:00:00Z", 0, 0, platform="s2a"),  # no cloud cover
        _item("d", "2021-06-05T00:00:00Z", 5, 5, **{"eo:cloud_cover": 10.0, "platform": "s2b"}),
        _item("c", "2021-06-07T23:59:59Z", 0, 0, **{"eo:cloud_cover": 90.0, "platform": "s2a"}),
        _item("f", "2021-06-08T00:00:00Z", 5, 5, **{"eo:cloud_cover": 0.0, "platform": "s2a"}),
    ]
    return _collection(tmp_path, items)


def _ids(items) -> list[str]:
    return [it.id for it in items]


# ---------------------------------------------------------------------------------------
# selection on a small collection


@pytest.mark.parametrize(
    ("kwargs", "geom", "expected"),
    [
        pytest.param({}, None, ["b", "e", "a", "d", "c", "f"], id="default-order-datetime-then-id"),
        pytest.param({}, box(0.2, 0.2, 0.8, 0.8), ["b", "e", "a", "c"], id="geometry"),
        pytest.param({"bbox": "5.5,5.5,6,6"}, None, ["d", "f"], id="bbox"),
        pytest.param(
            {"bbox": "5.5,5.5,6,6"}, box(0.2, 0.2, 0.8, 0.8), [], id="bbox-and-geometry-disjoint"
        ),
        pytest.param(
            {"datetime": "2021-06-03T12:00:00Z"}, None, ["a"], id="datetime-instant-exact"
        ),
        pytest.param(
            {"datetime": "2021-06-01/2021-06-07"}, None, ["b", "e", "a", "d", "c"], id="dates"
        ),
        pytest.param({"datetime": "2021-06-07/.."}, None, ["c", "f"], id="datetime-open-end"),
        pytest.param({"datetime": "../2021-06-01"}, None, ["b", "e"], id="datetime-open-start"),
        pytest.param({"ids": "f,a,nope"}, None, ["a", "f"], id="ids-filter-not-order"),
        pytest.param(
            {"filter": "eo:cloud_cover < 20"}, None, ["e", "d", "f"], id="cql2-missing-property"
        ),
        pytest.param({"filter": "eo:cloud_cover IS NULL"}, None, ["a"], id="cql2-null-is-missing"),
        pytest.param(
            {"filter": "NOT (eo:cloud_cover < 20)"}, None, ["b", "c"], id="cql2-not-missing"
        ),
        pytest.param(
            {"filter": "platform = 's2a' AND datetime > TIMESTAMP('2021-06-02T00:00:00Z')"},
            None,
            ["a", "c", "f"],
            id="cql2-and-timestamp",
        ),
        pytest.param({"filter": "id = 'd'"}, None, ["d"], id="cql2-id"),
        pytest.param(
            {"sortby": "eo:cloud_cover"},
            None,
            ["f", "d", "e", "b", "c", "a"],
            id="sortby-missing-last",
        ),
        pytest.param(
            {"sortby": "-eo:cloud_cover"},
            None,
            ["c", "b", "d", "e", "f", "a"],
            id="sortby-descending-missing-still-last",
        ),
        pytest.param(
            {"sortby": "platform,-datetime"},
            None,
            ["f", "c", "a", "e", "d", "b"],
            id="sortby-two-keys",
        ),
        pytest.param(
            {"sortby": "-platform,eo:cloud_cover"},
            None,
            ["d", "b", "f", "e", "c", "a"],
            id="sortby-ties-then-missing",
        ),
        pytest.param(
            {"sortby": "datetime"}, None, ["b", "e", "a", "d", "c", "f"], id="sortby-id-final-key"
        ),
        pytest.param(
            {"sortby": "-datetime"}, None, ["f", "c", "d", "a", "b", "e"], id="descending-id-asc"
        ),
        pytest.param({"sortby": "-id"}, None, ["f", "e", "d", "c", "b", "a"], id="sortby-id"),
        pytest.param({"sortby": "nothing"}, None, ["a", "b", "c", "d", "e", "f"], id="all-missing"),
        pytest.param(
            {
                "datetime": "2021-06-01/2021-06-07",
                "filter": "eo:cloud_cover >= 10",
                "sortby": "-eo:cloud_cover",
                "bbox": "-1,-1,2,2",
            },
            None,
            ["c", "b", "e"],
            id="everything-together",
        ),
    ],
)
def test_select(small, kwargs, geom, expected):
    search = make_search(**kwargs)
    assert _ids(select(small, search, geom)) == expected
    assert _ids(select(small, search, geom)) == expected  # from the caches


def test_footprint_not_bounding_box_selects(tmp_path):
    triangle = _item("t", "2021-01-01T00:00:00Z", 0, 0)
    triangle["geometry"]["coordinates"] = [[[0, 0], [1, 0], [0, 1], [0, 0]]]
    col = _collection(tmp_path, [triangle, _item("s", "2021-01-02T00:00:00Z", 0, 0)])
    assert _ids(select(col, make_search(), box(0.8, 0.8, 0.9, 0.9))) == ["s"]
    assert _ids(select(col, make_search(bbox="0.8,0.8,0.9,0.9"), None)) == ["s"]
    assert _ids(select(col, make_search(), box(0.1, 0.1, 0.2, 0.2))) == ["t", "s"]


def test_mixed_property_types_sort_numbers_then_text_then_others(tmp_path):
    items = [
        _item("n1", "2021-01-01T00:00:00Z", 0, 0, v=3),
        _item("n2", "2021-01-02T00:00:00Z", 0, 0, v=2.5),
        _item("s1", "2021-01-03T00:00:00Z", 0, 0, v="10"),
        _item("s2", "2021-01-04T00:00:00Z", 0, 0, v="3"),
        _item("l1", "2021-01-05T00:00:00Z", 0, 0, v=[1, 2]),
        _item("l2", "2021-01-05T00:00:00Z", 0, 0, v=[1, "x"]),
        _item("o1", "2021-01-05T00:00:00Z", 0, 0, v={"k": 1}),
        _item("b1", "2021-01-06T00:00:00Z", 0, 0, v=True),
        _item("x1", "2021-01-07T00:00:00Z", 0, 0),
    ]
    col = _collection(tmp_path, items)
    expected = ["b1", "n2", "n1", "s1", "s2", "l2", "l1", "o1", "x1"]
    assert _ids(select(col, make_search(sortby="v"), None)) == expected
    descending = ["o1", "l1", "l2", "s2", "s1", "n1", "n2", "b1", "x1"]
    assert _ids(select(col, make_search(sortby="-v"), None)) == descending


def test_list_values_sort_like_python_lists(tmp_path):
    items = [
        _item("a", "2021-01-01T00:00:00Z", 0, 0, v=[2, 1]),
        _item("b", "2021-01-02T00:00:00Z", 0, 0, v=[1, 5]),
        _item("c", "2021-01-03T00:00:00Z", 0, 0, v=[1, 5]),
        _item("d", "2021-01-04T00:00:00Z", 0, 0),
    ]
    col = _collection(tmp_path, items)
    assert _ids(select(col, make_search(sortby="-v"), None)) == ["a", "b", "c", "d"]
    assert _ids(select(col, make_search(sortby="v"), None)) == ["b", "c", "a", "d"]


# ---------------------------------------------------------------------------------------
# the cached and vectorised path against a naive loop


#: cql2's error for an expression that is neither true nor false (a missing property)
UNKNOWN = "Could not reduce expression to boolean"


def _naive(col, text, start, end, ids, geom, sortby) -> list[str]:
    """Every item, one at a time: footprint, datetime, ids, cql2 matches; then sorted."""
    expr = cql2.Expr(text) if text else None
    out = []
    for it in col.items:
        if geom is not None and not it.geometry.intersects(geom):
            continue
        if (start and it.datetime < start) or (end and it.datetime > end):
            continue
        if ids is not None and it.id not in ids:
            continue
        if expr is not None:
            doc = {"id": it.id, "properties": {**it.properties, "datetime": it.isodatetime}}
            try:
                if not expr.matches(doc):
                    continue
            except Exception as exc:  # cql2 raises a bare Exception, whatever went wrong
                if str(exc) != UNKNOWN:
                    raise
                continue  # a property the item lacks: unknown, not a match
        out.append(it)

    def cmp(a, b) -> int:
        for key in sortby:
            va = a.datetime if key.field == "datetime" else a.properties.get(key.field)
            vb = b.datetime if key.field == "datetime" else b.properties.get(key.field)
            if va == vb:
                continue
            if va is None or vb is None:
                return 1 if va is None else -1
            less = va < vb
            return (1 if less else -1) if key.descending else (-1 if less else 1)
        return (a.id > b.id) - (a.id < b.id)

    if sortby:
        out.sort(key=functools.cmp_to_key(cmp))
    return [it.id for it in out]


FILTERS = [
    None,
    "eo:cloud_cover < 20",
    "eo:cloud_cover >= 50 OR platform = 's2b'",
    "NOT (eo:cloud_cover BETWEEN 10 AND 60)",
    "platform = 's2a' AND view:off_nadir > 5",
    "eo:cloud_cover IS NULL",
    "s2:tile IN ('T1', 'T3') AND datetime < TIMESTAMP('2021-03-01T00:00:00Z')",
    "id IN ('it0001', 'it0002', 'it0003') OR eo:cloud_cover > 99",
    "CASEI(platform) = CASEI('S2A')",
    "properties.platform = 's2b' AND properties.eo:cloud_cover < 50",
    "TRUE",
]
SORTS = [
    None,
    "eo:cloud_cover",
    "-eo:cloud_cover,datetime",
    "platform,-view:off_nadir",
    "-datetime",
]


@pytest.fixture(scope="module")
def random_collection(tmp_path_factory):
    """1500 items over a 10x10 degree area, properties missing at random."""
    rng = random.Random(3)
    items = []
    base = dt.datetime(2021, 1, 1, tzinfo=UTC)
    for k in range(1500):
        props: dict[str, Any] = {"platform": rng.choice(["s2a", "s2b"])}
        if rng.random() < 0.9:
            props["eo:cloud_cover"] = rng.choice([0.0, 5.5, 10.0, 19.99, 20.0, 50.0, 77.7, 100.0])
        if rng.random() < 0.5:
            props["view:off_nadir"] = rng.randint(0, 10)
        if rng.random() < 0.7:
            props["s2:tile"] = rng.choice(["T1", "T2", "T3"])
        when = base + dt.timedelta(hours=rng.randrange(0, 24 * 120, 6))
        lon, lat = rng.uniform(0, 9), rng.uniform(40, 49)
        item = _item(f"it{k:04d}", when.isoformat(), lon, lat, **props)
        if rng.random() < 0.4:  # a swath edge: the bounding box is not the footprint
            item["geometry"]["coordinates"][0][2:4] = [[lon, lat + 1]]
        items.append(item)
    return _collection(tmp_path_factory.mktemp("random"), items)


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(4)])
def test_cached_selection_equals_naive_per_item_loop(random_collection, seed):
    col = fresh(random_collection)
    rng = random.Random(seed)
    cases = []
    for _ in range(60):
        x, y = rng.uniform(0, 9), rng.uniform(40, 49)
        size = rng.choice([0.01, 0.3, 1.5, 6.0])
        geom = rng.choice([None, box(x, y, x + size, y + size)])
        day = rng.randrange(0, 100)
        span = rng.choice(
            [None, f"2021-01-01T00:00:00Z/2021-{1 + day // 30:02d}-{1 + day % 28:02d}"]
        )
        ids = None
        if rng.random() < 0.2:
            ids = ",".join(f"it{rng.randrange(1500):04d}" for _ in range(200))
        search = make_search(
            datetime=span, ids=ids, filter=rng.choice(FILTERS), sortby=rng.choice(SORTS)
        )
        cases.append((search, geom))
    for _ in range(2):  # cold, then from the caches; in another order the second time
        for search, geom in cases:
            expected = _naive(
                col, search.filter, search.start, search.end, search.ids, geom, search.sortby
            )
            assert _ids(select(col, search, geom)) == expected, (search, geom)
        rng.shuffle(cases)


def test_filter_cache_is_bounded_and_stays_right(random_collection):
    col = fresh(random_collection)
    texts = [f"eo:cloud_cover < {v}" for v in range(MAX_CACHED_FILTERS + 8)]
    for k, text in enumerate(texts + texts[:3]):  # the first three again, once dropped
        got = _ids(select(col, make_search(filter=text), None))
        if k % 9 == 0 or k >= len(texts):
            assert got == _naive(col, text, None, None, None, None, ())
    assert len(col._filters) == MAX_CACHED_FILTERS  # the private cache: bounded


def test_unknown_sort_keys_add_no_ranks(random_collection):
    col = fresh(random_collection)
    for k in range(200):  # 8 new names a request, as a client may send
        names = ",".join(f"-nosuch{k}_{j}" for j in range(8))
        got = _ids(col.page(make_search(sortby=names), limit=3, offset=0).items)
        assert got == sorted(it.id for it in col.items)[:3]  # all missing: id order
    assert set(col._ranks) == {"id"}  # the private cache: no entry per unknown name


def test_rank_cache_is_bounded_and_stays_right(tmp_path):
    names = [f"p{k}" for k in range(MAX_CACHED_RANKS + 8)]
    items = [
        _item(
            f"i{k}",
            "2021-06-01T00:00:00Z",
            0,
            0,
            **{n: (k * (j + 3)) % 7 for j, n in enumerate(names)},
        )
        for k in range(20)
    ]
    col = _collection(tmp_path, items)
    for name in names + names[:3]:  # the first three again, once dropped
        got = _ids(select(col, make_search(sortby=f"-{name},id"), None))
        assert got == _naive(
            col, None, None, None, None, None, make_search(sortby=f"-{name}").sortby
        )
    assert len(col._ranks) == MAX_CACHED_RANKS  # the private cache: bounded


# ---------------------------------------------------------------------------------------
# huge selections (their speed: benchmarks/search_100k.py)


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """12,000 items on one footprint: every lookup there selects all of them."""
    base = dt.datetime(2020, 1, 1, tzinfo=UTC)
    items = [
        _item(
            f"s{k:05d}",
            (base + dt.timedelta(hours=k)).isoformat(),
            10,
            45,
            **{"eo:cloud_cover": float(k % 101), "platform": "s2a" if k % 3 else "s2b"},
        )
        for k in range(12000)
    ]
    return _collection(tmp_path_factory.mktemp("crowded"), items)


@pytest.mark.parametrize(
    ("kwargs", "count"),
    [
        pytest.param({}, 12000, id="no-filter"),
        pytest.param({"sortby": "-eo:cloud_cover,platform"}, 12000, id="sortby"),
        pytest.param({"filter": "eo:cloud_cover < 90"}, 10702, id="cql2"),
        pytest.param(
            {"filter": "platform = 's2a'", "sortby": "eo:cloud_cover", "datetime": "2020-02-01/.."},
            7504,
            id="datetime-cql2-sortby",
        ),
    ],
)
def test_huge_selections_are_complete_and_ordered(crowded, kwargs, count):
    tile = box(10.2, 45.2, 10.4, 45.4)
    search = make_search(**kwargs)
    col = fresh(crowded)
    cold = select(col, search, tile)
    assert len(cold) == count
    assert _ids(select(col, search, tile)) == _ids(cold)  # from the caches: the same
    expected = _naive(col, search.filter, search.start, search.end, None, tile, search.sortby)
    assert _ids(cold) == expected
