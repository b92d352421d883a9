"""What a baked layer is and which requests it answers: its tags, parsed back, compared as
normalised searches (not as the text of the parameters)."""

from __future__ import annotations

import pytest

from tiler.catalog.baked import (
    Asked,
    BakedLayer,
    BakedLayerError,
    BakedLayers,
    export_tags,
    same_selection,
)
from tiler.catalog.filters import make_search
from tiler.errors import InvalidFilter
from tiler.settings import Settings, parse_baked

BOUNDS = (14.0, 45.0, 15.0, 46.0)


def _layer(name: str = "summer", **search: str) -> BakedLayer:
    tags = export_tags("s2", "-cld", ["B04", "_date"], make_search(**search), False, "9.9")
    return BakedLayer.from_tags(name, "/data/summer.tif", tags, BOUNDS, "uint16")


def test_tags_round_trip():
    layer = _layer(
        datetime="2021-06-01/2021-09-01T12:00:00+02:00",
        filter="eo:cloud_cover < 20",
        sortby="-eo:cloud_cover",
    )
    assert layer.collection == "s2" and layer.quality == "-cld"
    assert layer.bands == ("B04", "_date") and not layer.unscale and layer.version == "9.9"
    expected = make_search(
        datetime="2021-06-01/2021-09-01T10:00:00Z",
        filter="eo:cloud_cover < 20",
        sortby="-eo:cloud_cover",
    )
    assert layer.search == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({}, {"sortby": "datetime"}),
        ({}, {"sortby": "+datetime,id"}),
        ({"filter": "eo:cloud_cover < 20"}, {"filter": "eo:cloud_cover<20"}),
        ({"filter": "eo:cloud_cover < 20"}, {"filter": "(eo:cloud_cover < 20)"}),
        ({"datetime": "2021-06-01"}, {"datetime": "2021-06-01/2021-06-01T23:59:59.999999Z"}),
        ({"datetime": "2021-06-01T02:00:00+02:00/.."}, {"datetime": "2021-06-01T00:00:00Z/"}),
        ({"ids": "b,a"}, {"ids": "a,b,a"}),
    ],
)
def test_the_same_selection_spelt_otherwise(a, b):
    assert same_selection(make_search(**a), make_search(**b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({}, {"sortby": "-datetime"}),
        ({}, {"datetime": "2021-06-01/.."}),
        ({}, {"filter": "eo:cloud_cover < 20"}),
        ({"filter": "eo:cloud_cover < 20"}, {"filter": "eo:cloud_cover <= 20"}),
        ({}, {"ids": "a"}),
        ({"datetime": "2021-06-01"}, {"datetime": "2021-06-01T00:00:00Z"}),
        ({"sortby": "datetime"}, {"sortby": "datetime,-id"}),
    ],
)
def test_another_selection(a, b):
    assert not same_selection(make_search(**a), make_search(**b))


def test_a_layer_answers_only_its_own_computation():
    layers = BakedLayers([_layer(), _layer("cloudless", filter="eo:cloud_cover < 20")])
    plain = Asked("s2", "-cld", make_search())
    assert [x.name for x in layers.matching(plain)] == ["summer"]
    cloudless = Asked("s2", "-cld", make_search(filter="eo:cloud_cover<20"))
    assert [x.name for x in layers.matching(cloudless)] == ["cloudless"]
    for other in (
        Asked("s1", "-cld", make_search()),
        Asked("s2", "cld", make_search()),
        Asked("s2", "-cld", make_search(bbox="14,45,15,46")),
        Asked("s2", "-cld", make_search(), unscale=True),
        Asked("s2", "-cld", make_search(), nodata=0.0),
    ):
        assert layers.matching(other) == [], other
    assert layers.of("s2")[0].missing(["B04", "B08", "_doy"]) == ["B08", "_doy"]


def test_files_without_an_exports_tags_are_refused():
    tags = export_tags("s2", "-cld", ["B04"], make_search(), False, "1")
    for key in ("TILER_QUALITY", "TILER_SEARCH"):
        broken = {k: v for k, v in tags.items() if k != key}
        with pytest.raises(BakedLayerError, match=f"no {key} tag"):
            BakedLayer.from_tags("x", "/x.tif", broken, BOUNDS, "uint8")
    for key, value in (("TILER_FORMAT", "0"), ("TILER_BANDS", "[1,"), ("TILER_SEARCH", "[]")):
        with pytest.raises(BakedLayerError):
            BakedLayer.from_tags("x", "/x.tif", {**tags, key: value}, BOUNDS, "uint8")
    with pytest.raises(InvalidFilter):
        BakedLayer.from_tags(
            "x",
            "/x.tif",
            {**tags, "TILER_SEARCH": '{"datetime": [null, null], "filter": "(("}'},
            BOUNDS,
            "uint8",
        )


def test_clients_never_see_a_layers_path():
    described = str(_layer().describe())
    assert "/data" not in described and "summer.tif" not in described


def test_baked_setting_forms(monkeypatch):
    assert parse_baked("a=/x.tif, b=https://h/y.tif?sig=1=2") == {
        "a": "/x.tif",
        "b": "https://h/y.tif?sig=1=2",
    }
    assert parse_baked('{"a": "s3://b/k,1.tif"}') == {"a": "s3://b/k,1.tif"}
    assert parse_baked("") == {}
    for bad in ("x", "=/x.tif", "a=", "a=/x,a=/y", "[1]"):
        with pytest.raises(ValueError):
            parse_baked(bad)
    monkeypatch.setenv("TILER_BAKED", "a=/x.tif,b=/y.tif")
    assert Settings().baked == {"a": "/x.tif", "b": "/y.tif"}
    monkeypatch.setenv("TILER_BAKED", '{"c": "/z.tif"}')
    assert Settings().baked == {"c": "/z.tif"}
