"""The command line: ``tiler index`` on real folders serves a mosaic equal to the oracle."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import morecantile
import numpy
import pystac
import pytest
from click.testing import CliRunner
from support.oracle import days

from tiler.catalog.loaders import load_collection
from tiler.cli import cli

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WMQ = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def l8(l8_index):
    """The file ``tiler index`` wrote (tests/conftest.py: once per run)."""
    return l8_index[1]


def test_index_writes_stac_items(l8):
    fc = json.loads(l8.read_text())
    items = [pystac.Item.from_dict(f) for f in fc["features"]]
    assert len(items) == 19
    assert {i.datetime.date() for i in items} >= {dt.date(2018, 1, 31), dt.date(2018, 12, 17)}
    assert all(len(i.assets) == 12 for i in items)


def test_indexed_landsat_with_shifted_grids_equals_oracle(l8, oracle, tile_reader, mosaicker):
    col = load_collection(l8)
    assert col.id == "l8ny18" and "BQA" in col.bands
    m = mosaicker(col, threads=2)
    # cloud confidence (BQA bits 5-6) as negative quality; fill (BQA == 1) never wins
    quality = "where(BQA == 1, nan, -(floor(BQA / 32) % 4))"

    def fn(v):
        b = v["BQA"]
        return numpy.where(b == 1, numpy.nan, -(numpy.floor(b / 32) % 4))

    out = ["B4", "B3", "B2", "BQA", "_index", "_date"]
    checked = 0
    for t in [WMQ.tile(-74.3, 40.6, 7), WMQ.tile(-73.6, 40.9, 8), WMQ.tile(-74.9, 40.2, 8)]:
        items = m.items(t)
        assert len(items) >= 5
        img, stats = m.tile(t, quality, out)
        # the oracle reads the bands it uses (all 12 share each scene's footprint)
        reads = [tile_reader({k: it.bands[k].href for k in out[:4]}, t.x, t.y, t.z) for it in items]
        data, valid = oracle(reads, fn, ["BQA"], out, days(items))
        numpy.testing.assert_array_equal(~img.array.mask[0], valid)
        for i in range(len(out)):
            numpy.testing.assert_array_equal(img.array.data[i][valid], data[i][valid])
        checked += int(valid.sum())
        assert len(stats.used) > 1  # partial overlaps: several scenes contribute
    assert checked > 10000


def test_index_reports_bad_input(tmp_path):
    result = CliRunner().invoke(cli, ["index", str(tmp_path), "-o", str(tmp_path / "x.json")])
    assert result.exit_code != 0
    assert "Error" in result.output


@pytest.mark.e2e
def test_demo_command_prints_the_collection_file(full_demo):
    result = CliRunner().invoke(cli, ["demo", "--output", str(full_demo)])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path.name == "demo.json" and path.is_file()


def test_pgstac_migrate_refuses_a_version_pypgstac_cannot_install():
    # checked before connecting: no database needed
    result = CliRunner().invoke(
        cli,
        [
            "pgstac",
            "migrate",
            "--dsn",
            "postgresql://nobody@127.0.0.1:1/x",
            "--to-version",
            "9.9.9",
        ],
    )
    assert result.exit_code == 1
    assert "cannot install PgSTAC 9.9.9" in result.output
    assert "pip install -U pypgstac" in result.output
    assert "--to-version X.Y.Z" in CliRunner().invoke(cli, ["pgstac", "migrate", "--help"]).output
