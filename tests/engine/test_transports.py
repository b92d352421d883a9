"""The same collection read from local files, over HTTP (range requests) and from S3.

The mosaic must not depend on where the files are: tiles from /vsicurl/ (a range-capable
HTTP server on loopback, with latency) and /vsis3/ (moto's S3 on loopback) equal the local
ones and the naive oracle's reads of the same remote files, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import morecantile
import numpy
import pytest
from support.oracle import days
from support.remote_servers import RangeServer, environ, restore, rewrite_hrefs, s3_server

from tiler.catalog.loaders import load_collection

pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")


def _tiles(catalog, zoom):
    w, s, e, n = catalog.info().bounds
    return list(WMQ.tiles(w, s, e, n, [zoom]))


@pytest.fixture(scope="module")
def http_copy(synthetic, tmp_path_factory):
    with RangeServer(synthetic["root"], latency=0.005) as server:
        out = tmp_path_factory.mktemp("http") / "synthetic-http.json"
        yield rewrite_hrefs(synthetic["path"], out, server.url), server


@pytest.fixture(scope="module")
def s3_copy(synthetic, tmp_path_factory):
    root = Path(synthetic["root"])
    files = {str(p.relative_to(root)): p for p in root.rglob("*.tif")}
    with s3_server(files) as settings:
        old = environ(settings)
        try:
            out = tmp_path_factory.mktemp("s3") / "synthetic-s3.json"
            yield rewrite_hrefs(synthetic["path"], out, "s3://cogs")
        finally:
            restore(old)


@pytest.mark.parametrize("transport", ["http", "s3"])
@pytest.mark.parametrize(
    ("quality", "sortby"),
    [
        pytest.param("q", None, id="ties-nan-inf-nodata"),
        pytest.param("-q", "-eo:cloud_cover", id="sortby"),
    ],
)
def test_remote_tiles_equal_local_tiles_and_the_oracle(
    request, synthetic, mosaicker, oracle, tile_reader, transport, quality, sortby
):
    from tiler.catalog.filters import make_search

    copy = request.getfixturevalue(f"{transport}_copy")
    path = copy[0] if transport == "http" else copy
    local, remote = load_collection(synthetic["path"]), load_collection(path)
    assert all("://" in b.href for it in remote.items for b in it.bands.values())
    search = make_search(sortby=sortby)
    m_local, m_remote = mosaicker(local, threads=4), mosaicker(remote, threads=8)
    out = ["a", "b", "q", "quality", "_index"]
    checked = 0
    for t in _tiles(local, 15):
        items = m_remote.items(t, search)
        if not items:
            continue
        a, _ = m_local.tile(t, quality, out, search)
        b, stats = m_remote.tile(t, quality, out, search)
        assert not stats.skipped, stats.skipped
        numpy.testing.assert_array_equal(a.array.mask, b.array.mask)
        assert a.array.data.tobytes() == b.array.data.tobytes()
        reads = [
            tile_reader({k: v.href for k, v in it.bands.items()}, t.x, t.y, t.z) for it in items
        ]
        sign = -1.0 if quality.startswith("-") else 1.0
        data, valid = oracle(reads, lambda v, s=sign: s * v["q"], ["q"], out, days(items))
        numpy.testing.assert_array_equal(~b.array.mask[0], valid)
        for i in range(len(out)):
            numpy.testing.assert_array_equal(b.array.data[i][valid], data[i][valid])
        checked += int(valid.sum())
    assert checked > 1000


def test_http_reads_go_over_the_network(synthetic, tmp_path, mosaicker):
    # a server of its own: new URLs, which no GDAL cache of this process has seen
    with RangeServer(synthetic["root"]) as server:
        path = rewrite_hrefs(synthetic["path"], tmp_path / "fresh.json", server.url)
        remote = load_collection(path)
        m = mosaicker(remote, threads=8)
        t = next(t for t in _tiles(remote, 15) if m.items(t))
        img, stats = m.tile(t, "q", ["a"])
        assert stats.used and not img.array.mask.all()
        assert server.requests > 0 and server.bytes > 0


@pytest.mark.parametrize("transport", ["http", "s3"])
def test_remote_exports_and_points_equal_local_ones(request, synthetic, mosaicker, transport):
    """An export (a part in the collection's CRS) and the per-item series at points read
    over the network equal the same reads of the local files."""
    from rasterio.crs import CRS

    from tiler.catalog.filters import make_search
    from tiler.engine.expression import parse
    from tiler.engine.grids import PointGrid
    from tiler.engine.io import ReadOptions

    copy = request.getfixturevalue(f"{transport}_copy")
    path = copy[0] if transport == "http" else copy
    local, remote = load_collection(synthetic["path"]), load_collection(path)
    m_local, m_remote = mosaicker(local, threads=2), mosaicker(remote, threads=2)
    w, s, e, n = local.info().bounds
    out = ["a", "b", "q", "quality", "_index"]
    a, _, _ = m_local.part((w, s, e, n), CRS.from_epsg(4326), (97, 61), "q", out)
    b, stats, _ = m_remote.part((w, s, e, n), CRS.from_epsg(4326), (97, 61), "q", out)
    assert not stats.skipped and (~a.array.mask).sum() > 1000
    numpy.testing.assert_array_equal(a.array.mask, b.array.mask)
    assert a.array.data.tobytes() == b.array.data.tobytes()
    expr = parse("q", local.info().bands)
    for k in range(5):
        grid = PointGrid(w + (e - w) * (k + 1) / 6, s + (n - s) * (k + 1) / 7)
        _, p = m_local.engine.point(local, make_search(), grid, expr, out, ReadOptions())
        _, r = m_remote.engine.point(remote, make_search(), grid, expr, out, ReadOptions())
        assert not r.skipped
        assert p.winner == r.winner
        numpy.testing.assert_equal([p.quality, p.values], [r.quality, r.values])  # NaN == NaN
