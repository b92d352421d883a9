"""Faults of remote COGs: one item's file fails, the tile is served from the rest.

Through the real engine and GDAL's /vsicurl/ against a real HTTP server on loopback
(:class:`support.remote_servers.RangeServer` with its
:attr:`~support.remote_servers.RangeServer.faults`), one
file of one item (its quality band's file, or one of its output bands' files) answers 500,
403 or 404, refuses the connection, never answers, or sends a truncated body. The tile
must equal, bit for bit, the naive oracle with that item left out (its place in the
collection order kept), report the item in the stats' ``skipped`` (``X-Items-Skipped``)
with a reason naming neither URL nor path, and cost at most the item timeout more.

Every case gets hrefs no earlier case used (:meth:`~support.remote_servers.RangeServer.fresh`):
GDAL keeps file sizes, 404s and chunks per URL for the whole process.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy
import pytest
from fastapi.testclient import TestClient
from support.faults import (
    FAULTS,
    OUT,
    QUALITY,
    TIMEOUT,
    WMQ,
    assert_equals_oracle,
    check_reason,
    closed_port,
    footprint,
    local_reads,
    remote_copy,
)
from support.oracle import days, naive_mosaic
from support.remote_servers import RangeServer

from tiler.app import create_app
from tiler.catalog.filters import Search
from tiler.catalog.loaders import load_collection
from tiler.settings import Settings

pytestmark = pytest.mark.e2e

#: which of the item's files fails: its quality band's, or an output band's only
FILES = {"quality-file": "q", "output-file": "a"}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("which", list(FILES))
def test_a_failing_file_skips_its_item_and_the_tile_is_served_from_the_rest(
    synthetic, mosaicker, case, tmp_path, which, fault
):
    t, ids, k = case["tile"], case["ids"], case["faulty"]
    with RangeServer(synthetic["root"]) as server, closed_port() as refused:
        path, href = remote_copy(
            synthetic, tmp_path / "remote.json", server, ids[k], FILES[which], fault, refused
        )
        remote = load_collection(path)
        m = mosaicker(remote, threads=4, timeout=TIMEOUT)
        assert [it.id for it in m.items(t)] == ids
        img, stats = m.tile(t, QUALITY, OUT)
        if fault != "refused":  # the faulty file was asked for, and misbehaved
            assert server.faulted[href.removeprefix(server.url)] >= 1, dict(server.faulted)
    assert list(stats.skipped) == [ids[k]], stats.skipped
    check_reason(stats.skipped[ids[k]], fault, href, case["root"])
    assert stats.expiries <= 1  # at most one item timeout more: one deadline for the tile
    assert_equals_oracle(img, case)
    assert ids[k] not in stats.used, stats.used


def test_over_http_a_tile_with_a_failing_item_is_served_and_never_cached(synthetic, case, tmp_path):
    t, ids, k = case["tile"], case["ids"], case["faulty"]
    bands = ["a", "b", "quality", "_index"]
    with RangeServer(synthetic["root"]) as server:
        path, href = remote_copy(synthetic, tmp_path / "remote.json", server, ids[k], "q", "500")
        settings = Settings(collections=[path], read_threads=2, item_timeout=TIMEOUT)
        with TestClient(create_app(settings, {"test": load_collection(path)})) as client:
            url = f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
            params = {"quality": QUALITY, "bands": ",".join(bands)}
            answers = [client.get(url, params=params) for _ in range(2)]
        assert server.faulted[href.removeprefix(server.url)] >= 1
    for r in answers:
        assert r.status_code == 200, r.text
        skipped = r.headers["X-Items-Skipped"]
        assert [s.split(": ", 1)[0] for s in skipped.split("; ")] == [ids[k]], skipped
        check_reason(skipped.split(": ", 1)[1], "500", href, case["root"])
        assert r.headers["Cache-Control"] == "no-store"
        assert "ETag" not in r.headers
        assert r.headers["X-Cache"] == "miss"  # never kept, so never a hit
    arr = numpy.load(io.BytesIO(r.content))
    rows = [OUT.index(b) for b in bands]
    valid = case["valid"]
    numpy.testing.assert_array_equal(arr[-1] != 0, valid)
    numpy.testing.assert_array_equal(arr[:-1][:, valid], case["data"][rows][:, valid])


def test_a_failing_band_file_of_a_guess_that_wins_nothing_is_not_reported(
    cloudy, mosaicker, tile_reader, tmp_path
):
    """The first candidate's bands are read with its quality (a guess that saves a round
    trip); where it wins no pixel, a fault of its band file changes nothing: the tile is
    the oracle's, complete, and no item is reported skipped."""
    local = load_collection(cloudy["path"])
    w, s, e, n = local.info().bounds
    quality, out = "-cld", ["ref", "cld", "quality", "_index"]

    def score(v: Any) -> Any:
        return -v["cld"]

    found = None
    for t in (t for z in (16, 17, 18) for t in WMQ.tiles(w, s, e, n, [z])):
        items = local.search(Search(), footprint(t))
        reads = [local_reads(tile_reader, it, t) for it in items]
        if len(items) < 2 or reads[0] is None:
            continue
        data, valid = naive_mosaic(reads, score, ["cld"], out, days(items))
        if valid.any() and not (data[3][valid] == 0).any():  # item 0 wins no pixel
            found = t, items, data, valid
            break
    assert found is not None, "no tile where the first candidate wins nothing"
    t, items, data, valid = found
    root = Path(cloudy["path"]).parent
    with RangeServer(root) as server:
        copy = {"path": cloudy["path"]}
        path, href = remote_copy(copy, tmp_path / "r.json", server, items[0].id, "ref", "500")
        m = mosaicker(load_collection(path), threads=4, timeout=TIMEOUT)
        img, stats = m.tile(t, quality, out)
        asked = server.faulted[href.removeprefix(server.url)]
    assert stats.skipped == {} and items[0].id not in stats.used
    assert asked >= 1  # the guess was read (and failed)
    for i, name in enumerate(out):
        numpy.testing.assert_array_equal(~img.array.mask[i], valid, err_msg=f"mask of {name}")
        numpy.testing.assert_array_equal(img.array.data[i][valid], data[i][valid])
