"""Common names (``eo:bands`` / ``bands``) of real and synthetic items, as every catalogue
reads them: from the items in memory, and from a collection document's ``item_assets`` and
``eo:bands`` summary for PgSTAC and STAC APIs."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.stac_files import SHARED

from tiler.catalog.assets import item_bands
from tiler.catalog.collection_doc import collection_info, declared_aliases
from tiler.catalog.loaders import load_collection
from tiler.catalog.models import Band, band_aliases, loads
from tiler.errors import InvalidBands
from tiler.tools.load import collection_document

ITEMS = SHARED / "stac_items"
PC_S2 = {
    "coastal": ["B01"],
    "blue": ["B02"],
    "green": ["B03"],
    "red": ["B04"],
    "rededge": ["B05", "B06", "B07", "B8A"],  # Planetary Computer calls B8A rededge too
    "nir": ["B08"],
    "swir16": ["B11"],
    "swir22": ["B12"],
}


def _shared(rel: str) -> Path:
    path = ITEMS / rel
    if not path.is_file():
        pytest.skip(f"shared STAC item {rel} not present")
    return path


@pytest.mark.parametrize(
    ("rel", "aliases"),
    [
        pytest.param(
            "odc-stac/site2-2020_jun_jul-35MNM.geojson", PC_S2, id="planetary-computer-s2"
        ),
        pytest.param(
            "rio-tiler-pds/S2A_29RKH_20200219_0_L2A.json",
            {
                "rededge": ["rededge1", "rededge2", "rededge3"]
                + ["rededge1-jp2", "rededge2-jp2", "rededge3-jp2"]
            },
            id="earth-search-v1-keys-are-common-names-but-rededge",
        ),
        pytest.param("odc-stac/S2A_28QCH_20200714_0_L2A.json", {}, id="earth-search-v0-none"),
        pytest.param("stac-geoparquet/landsat-c2-l2-pc.json", {}, id="pc-landsat-keys-are-names"),
    ],
)
def test_real_items_aliases(rel, aliases):
    info = load_collection(_shared(rel)).info()
    assert info.aliases == aliases
    for alias, bands in aliases.items():
        if len(bands) == 1:
            assert info.resolve_band(alias) == bands[0]
        else:
            with pytest.raises(InvalidBands, match=", ".join(bands)):
                info.resolve_band(alias)


def test_a_band_name_always_means_its_band():
    info = load_collection(_shared("rio-tiler-pds/S2A_29RKH_20200219_0_L2A.json")).info()
    # red is declared by the asset red and by red-jp2: as a band name it is not ambiguous
    assert info.resolve_band("red") == "red"
    assert info.resolve_band("red-jp2") == "red-jp2"
    assert info.resolve_band("quality", ("quality",)) == "quality"
    with pytest.raises(InvalidBands, match="unknown band 'nir99'; bands of"):
        info.resolve_band("nir99")


def test_collection_document_aliases_equal_the_items():
    """PgSTAC and STAC API catalogues read them from the document: the same answer."""
    doc = loads(_shared("odc-stac/sentinel-2-l2a.collection.json").read_bytes())
    bands = list(load_collection(_shared("odc-stac/site2-2020_jun_jul-35MNM.geojson")).bands)
    assert declared_aliases(doc, bands) == PC_S2
    # only the summary, no item_assets
    summary_only = {"summaries": doc["summaries"]}
    assert declared_aliases(summary_only, bands) == PC_S2
    assert collection_info(doc, "sentinel-2-l2a", bands, None).aliases == PC_S2


def test_tiler_load_document_keeps_the_aliases_of_the_memory_catalogue():
    col = load_collection(_shared("odc-stac/site2-2020_jun_jul-35MNM.geojson"))
    doc = collection_document(col)
    assert collection_info(doc, col.id, list(col.bands), None).aliases == col.info().aliases


@pytest.mark.parametrize(
    ("asset", "expected"),
    [
        pytest.param(
            {"eo:bands": [{"name": "B04", "common_name": "red"}]}, {"x": "red"}, id="stac-1.0"
        ),
        pytest.param(
            {"bands": [{"name": "B04", "eo:common_name": "red"}]}, {"x": "red"}, id="stac-1.1"
        ),
        pytest.param({"eo:bands": [{"name": "B04"}]}, {"x": None}, id="no-common-name"),
        pytest.param({"eo:bands": {"name": "B04"}}, {"x": None}, id="malformed-eo-bands"),
        pytest.param(
            {
                "eo:bands": [
                    {"name": "r", "common_name": "red"},
                    {"name": "g", "common_name": "green"},
                ]
            },
            {"r": "red", "g": "green"},
            id="multi-band-asset",
        ),
    ],
)
def test_common_names_of_assets(asset, expected):
    bands = item_bands({"x": {"href": "s3://b/x.tif", "type": "image/tiff", **asset}}, Path("/"))
    assert {name: b.common_name for name, b in bands.items()} == expected


def test_common_name_does_not_change_what_a_band_is():
    assert Band("B04", "a.tif", common_name="red") == Band("B04", "a.tif")


def test_band_aliases_order_and_exclusions():
    pairs = [("B06", "rededge"), ("B05", "rededge"), ("red", "red"), ("B99", "x"), ("B04", None)]
    assert band_aliases(pairs, ["B04", "B05", "B06", "red"]) == {"rededge": ["B05", "B06"]}
