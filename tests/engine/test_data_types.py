"""Band data types: recorded when a catalogue loads, checked against files only by reads.

The nodata guard of the API uses the data types the catalogue recorded
(``CollectionInfo.data_types``), never opening a file or querying the catalogue per
request; a band of unknown type is checked by the read itself, against the file's own
type, through the engine's (signed) dataset opener.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
import rasterio
from rasterio.transform import from_bounds
from shapely.geometry import box

from tiler.api.checks import check_nodata
from tiler.catalog.collection_doc import collection_info
from tiler.catalog.memory import MemoryCatalog
from tiler.catalog.models import Band, Item
from tiler.engine.io import ReadOptions
from tiler.errors import InvalidNodata

WMQ = morecantile.tms.get("WebMercatorQuad")
TILE = morecantile.Tile(8800, 5880, 14)


def _file(path: Path, dtype: str) -> str:
    profile = {
        "driver": "GTiff",
        "width": 64,
        "height": 64,
        "count": 1,
        "dtype": dtype,
        "crs": "EPSG:3857",
        "transform": from_bounds(*WMQ.xy_bounds(TILE), 64, 64),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(numpy.ones((64, 64), dtype=dtype), 1)
    return str(path)


class _NoSample(MemoryCatalog):
    """A catalogue whose sample item must not be asked for (a query per request)."""

    def sample(self) -> Item | None:
        raise AssertionError("sample() called")


def _catalog(root: Path, declared: str | None) -> MemoryCatalog:
    """Two items of a uint8 band ``a`` (declared as ``declared``) and a uint16 band ``b``."""
    footprint = box(*WMQ.bounds(TILE))
    items = []
    for k in range(2):
        a = Band("a", _file(root / f"a{k}.tif", "uint8"), data_type=declared)
        b = Band("b", _file(root / f"b{k}.tif", "uint16"))
        when = dt.datetime(2020, 7, 1 + k, tzinfo=dt.UTC)
        items.append(Item(f"i{k}", when, footprint, {}, {"a": a, "b": b}))
    return _NoSample("types", items)


def test_a_memory_catalogue_records_declared_types(tmp_path: Path) -> None:
    assert _catalog(tmp_path, "uint8").info().data_types == {"a": "uint8"}
    assert _catalog(tmp_path, None).info().data_types == {}


def test_a_collection_document_records_item_assets_types() -> None:
    doc = {
        "item_assets": {
            "B04": {"type": "image/tiff", "raster:bands": [{"data_type": "uint16"}]},
            "SCL": {"type": "image/tiff", "roles": ["data"]},
        }
    }
    info = collection_info(doc, "c", ["B04", "SCL"], None)
    assert info.data_types == {"B04": "uint16"}


def test_the_guard_uses_recorded_types_without_a_sample(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "uint8")
    with pytest.raises(InvalidNodata, match=r"band 'a' \(uint8\).*0\.\.255"):
        check_nodata(catalog, 300.0, ["a", "b"])
    check_nodata(catalog, 255.0, ["a", "b"])
    check_nodata(catalog, 300.0, ["b"])  # unknown type: the read decides


@pytest.mark.parametrize(("nodata", "band", "dtype"), [(300.0, "a", "uint8"), (7e4, "b", "uint16")])
def test_a_read_refuses_a_nodata_its_file_cannot_hold(
    tmp_path: Path, mosaicker: Callable[..., Any], nodata: float, band: str, dtype: str
) -> None:
    catalog = _catalog(tmp_path, None)
    check_nodata(catalog, nodata, [band])  # a type unknown to the catalogue: passes
    m = mosaicker(catalog, threads=1)
    with pytest.raises(InvalidNodata, match=rf"band '{band}' \({dtype}\)"):
        m.tile(TILE, band, [band], options=ReadOptions(nodata=nodata))
    img, stats = m.tile(TILE, band, [band], options=ReadOptions(nodata=0.0))
    assert stats.read == 2 and not stats.skipped
