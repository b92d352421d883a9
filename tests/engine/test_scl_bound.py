"""The built-in SCL quality stops reading early even where items declare no data types.

Planetary Computer's Sentinel-2 items declare no ``raster:bands`` ``data_type`` for SCL;
the SCL ranking is a ``where()`` of constants, bounded by its highest rank (9) whatever
SCL's values, so once every pixel holds a clear pixel no later item is read, and the
mosaic stays equal to the naive oracle.
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

from tiler.catalog.memory import MemoryCatalog
from tiler.catalog.models import SCL_RANKS, Band, Item, scl_quality
from tiler.engine.expression import parse
from tiler.engine.io import ReadOptions
from tiler.engine.mosaic import quality_bound

WMQ = morecantile.tms.get("WebMercatorQuad")
TILE = morecantile.Tile(8800, 5880, 14)
SIZE = 256
OUT = ["B04", "SCL", "quality", "_index"]


def _write(path: Path, data: numpy.ndarray, nodata: int) -> str:
    bounds = WMQ.xy_bounds(TILE)
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": "EPSG:3857",
        "transform": from_bounds(*bounds, SIZE, SIZE),
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return str(path)


def _scl_items(root: Path) -> list[Item]:
    """Six items: the first partly clear, the second clear everywhere, four more after."""
    rng = numpy.random.default_rng(17)
    west, south, east, north = WMQ.bounds(TILE)
    items = []
    for k in range(6):
        if k == 1:
            scl = numpy.full((SIZE, SIZE), 4, dtype="uint8")
        else:
            scl = rng.choice(numpy.array([0, 3, 4, 5, 8, 9, 10], dtype="uint8"), (SIZE, SIZE))
        red = rng.integers(1, 5000, (SIZE, SIZE), dtype="uint16")
        bands = {  # no data_type declared, as on Planetary Computer
            "B04": Band("B04", _write(root / f"b04_{k}.tif", red, 0)),
            "SCL": Band("SCL", _write(root / f"scl_{k}.tif", scl, 0)),
        }
        items.append(
            Item(
                id=f"s2-{k}",
                datetime=dt.datetime(2020, 7, 1 + k, tzinfo=dt.UTC),
                geometry=box(west, south, east, north),
                properties={},
                bands=bands,
            )
        )
    return items


def _scl_rank(values: dict[str, numpy.ndarray]) -> numpy.ndarray:
    """The SCL ranking computed independently of the engine (nan: never a candidate)."""
    scl = values["SCL"]
    out = numpy.full(scl.shape, numpy.nan)
    for value, rank in SCL_RANKS.items():
        out[scl == value] = rank
    return out


def test_the_scl_ranking_is_bounded_without_declared_types(tmp_path: Path) -> None:
    items = _scl_items(tmp_path)
    assert all(b.data_type is None for it in items for b in it.bands.values())
    expr = parse(scl_quality("SCL"), ["B04", "SCL"])
    assert quality_bound(items, expr, ReadOptions()) == 9.0
    # a bound that depends on an undeclared band's values is still none
    assert quality_bound(items, parse("-SCL", ["SCL"]), ReadOptions()) is None
    # nor with a nodata override or unscale
    assert quality_bound(items, expr, ReadOptions(nodata=0)) is None
    assert quality_bound(items, expr, ReadOptions(unscale=True)) is None


def test_an_scl_ranked_mosaic_stops_early_and_equals_the_oracle(
    tmp_path: Path,
    mosaicker: Callable[..., Any],
    oracle: Callable[..., tuple[numpy.ndarray, numpy.ndarray]],
    tile_reader: Callable[..., dict[str, numpy.ma.MaskedArray] | None],
) -> None:
    items = _scl_items(tmp_path)
    catalog = MemoryCatalog("scl", items)
    m = mosaicker(catalog, threads=1)  # one read at a time: which items are read is exact
    img, stats = m.tile(TILE, scl_quality("SCL"), OUT)
    # the first two items put a clear pixel (rank 9, the bound) everywhere: no more reads
    assert stats.considered == 6
    assert stats.read == 2
    assert stats.exited_early
    reads = [
        tile_reader({n: b.href for n, b in it.bands.items()}, TILE.x, TILE.y, TILE.z)
        for it in catalog.items
    ]
    data, valid = oracle(reads, _scl_rank, ["SCL"], OUT, [it.days for it in catalog.items])
    numpy.testing.assert_array_equal(~img.array.mask[0], valid)
    for i in range(data.shape[0]):
        numpy.testing.assert_array_equal(img.array.data[i][valid].astype("float64"), data[i][valid])
    assert valid.all()


@pytest.mark.parametrize("quality", ["-SCL", "B04"])
def test_a_value_dependent_quality_over_undeclared_bands_reads_every_item(
    tmp_path: Path, mosaicker: Callable[..., Any], quality: str
) -> None:
    """Without a bound (it depends on an undeclared band's values) nothing is left out."""
    catalog = MemoryCatalog("scl", _scl_items(tmp_path))
    _, stats = mosaicker(catalog, threads=1).tile(TILE, quality, ["B04"])
    assert stats.read == stats.considered == 6
    assert not stats.exited_early
