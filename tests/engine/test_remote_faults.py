"""Faults of remote COGs: one item's file fails, the tile is served from the rest.

Through the real engine and GDAL's /vsicurl/ against a real HTTP server on loopback
(:class:`remote_servers.RangeServer` with :attr:`~remote_servers.RangeServer.faults`), one
file of one item (its quality band's file, or one of its output bands' files) answers 500,
403 or 404, refuses the connection, never answers, or sends a truncated body. The tile
must equal, bit for bit, the naive oracle with that item left out (its place in the
collection order kept), report the item in the stats' ``skipped`` (``X-Items-Skipped``)
with a reason naming neither URL nor path, and cost at most the item timeout more.

Every case gets hrefs no earlier case used (:meth:`~remote_servers.RangeServer.fresh`):
GDAL keeps file sizes, 404s and chunks per URL for the whole process.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
from conftest import naive_mosaic
from fastapi.testclient import TestClient
from remote_servers import RangeServer

from tiler.app import create_app
from tiler.catalog.filters import Search
from tiler.catalog.loaders import load_collection
from tiler.engine.grids import TileGrid
from tiler.settings import Settings

pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")
TIMEOUT = 2.0  # the engine's item timeout in these tests (s)
MARGIN = 3.0  # what a loaded machine may add to a tile's time (s)
QUALITY = "q"
OUT = ["a", "b", "q", "quality", "_index"]

#: fault -> words its skip reason must hold (None: any reason, e.g. a broken transfer)
FAULTS: dict[str, str | None] = {
    "500": "server error",
    "403": "access denied",
    "404": "not found",
    "refused": "unreachable",
    "hang": "timed out",
    "truncate": None,
}
#: which of the item's files fails: its quality band's, or an output band's only
FILES = {"quality-file": "q", "output-file": "a"}


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening) while held."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def _days(items: list[Any]) -> list[float]:
    return [it.datetime.timestamp() / 86400 for it in items]


@pytest.fixture(scope="module")
def case(synthetic, tile_reader) -> dict[str, Any]:
    """A z15 tile and the item whose loss changes it most, chosen with the oracle alone.

    Also the oracle's tile without that item (its reads None, positions kept).
    """
    local = load_collection(synthetic["path"])
    w, s, e, n = local.info().bounds
    best: tuple[int, Any, int] | None = None
    for t in WMQ.tiles(w, s, e, n, [15]):
        items = local.search(Search(), _footprint(t))
        if len(items) < 3:
            continue
        wins = _quality_winners(tile_reader, items, t)
        for k in range(1, len(items) - 1):  # items before and after: positions are kept
            if best is None or int((wins == k).sum()) > best[0]:
                best = (int((wins == k).sum()), t, k)
    assert best is not None and best[0] > 500, best
    _, t, k = best
    items = local.search(Search(), _footprint(t))
    reads = [None if i == k else _local_reads(tile_reader, it, t) for i, it in enumerate(items)]
    data, valid = naive_mosaic(reads, lambda v: v[QUALITY], [QUALITY], OUT, _days(items))
    return {
        "tile": t,
        "ids": [it.id for it in items],
        "faulty": k,
        "wins": _quality_winners(tile_reader, items, t) == k,  # where it wins when it answers
        "data": data,
        "valid": valid,
        "root": Path(synthetic["root"]),
    }


def _quality_winners(tile_reader: Any, items: list[Any], t: Any) -> numpy.ndarray:
    """Per pixel, the oracle's winner on quality among all ``items`` (-1: none)."""
    reads = [_local_reads(tile_reader, it, t) for it in items]
    index, has = naive_mosaic(reads, lambda v: v[QUALITY], [QUALITY], ["_index"], _days(items))
    return numpy.where(has, index[0], -1).astype(int)


def _footprint(t: Any) -> Any:
    return TileGrid(WMQ, t.x, t.y, t.z, 256).footprint()


def _local_reads(tile_reader: Any, item: Any, t: Any) -> Any:
    return tile_reader({k: b.href for k, b in item.bands.items()}, t.x, t.y, t.z)


def remote_copy(
    synthetic: dict[str, Any],
    dst: Path,
    server: RangeServer,
    faulty_id: str,
    band: str,
    fault: str,
    refused_port: int | None = None,
) -> tuple[Path, str]:
    """The collection over fresh URLs of ``server``, ``band`` of ``faulty_id`` failing.

    Returns the collection file and the faulty file's href.
    """
    base = server.fresh()
    doc = json.loads(Path(synthetic["path"]).read_text())
    faulty_href = ""
    for feature in doc["features"]:
        for key, asset in feature["assets"].items():
            href = f"{base}/{asset['href']}"
            if feature["id"] == faulty_id and key == band:
                if fault == "refused":
                    href = f"http://127.0.0.1:{refused_port}/{asset['href']}"
                else:
                    server.faults[href.removeprefix(server.url)] = fault
                faulty_href = href
            asset["href"] = href
    assert faulty_href
    dst.write_text(json.dumps(doc))
    return dst, faulty_href


def check_reason(reason: str, fault: str, href: str, root: Path) -> None:
    """The reason says what went wrong and names neither the URL nor a path."""
    path = href.split("://", 1)[1].split("/", 1)[1]  # e.g. ~12/item3/a.tif
    for leak in (href, path, "://", "127.0.0.1", ".tif", "~", str(root), root.name):
        assert leak not in reason, (leak, reason)
    for part in path.split("/"):
        assert part not in reason, (part, reason)
    words = FAULTS[fault]
    if words is not None:
        assert words in reason.lower(), reason


def assert_equals_oracle(img: Any, case: dict[str, Any]) -> None:
    """Mask and data of every band equal the oracle without the faulty item, bit for bit."""
    data, valid = case["data"], case["valid"]
    assert img.array.shape == (len(OUT), *valid.shape)
    holes = int((img.array.mask[0] & valid).sum())
    extra = int((~img.array.mask[0] & ~valid).sum())
    theirs = int((img.array.mask[0] & valid & case["wins"]).sum())
    assert not holes and not extra, (
        f"{holes} pixels masked that the rest of the items fill ({theirs} of them won on "
        f"quality by the faulty item when it answers; it wins {int(case['wins'].sum())}), "
        f"{extra} pixels valid that the oracle masks"
    )
    for i, name in enumerate(OUT):
        numpy.testing.assert_array_equal(~img.array.mask[i], valid, err_msg=f"mask of {name}")
        numpy.testing.assert_array_equal(
            img.array.data[i][valid], data[i][valid], err_msg=f"data of {name}"
        )


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
        start = time.monotonic()
        img, stats = m.tile(t, QUALITY, OUT)
        took = time.monotonic() - start
        if fault != "refused":  # the faulty file was asked for, and misbehaved
            assert server.faulted[href.removeprefix(server.url)] >= 1, dict(server.faulted)
    assert list(stats.skipped) == [ids[k]], stats.skipped
    check_reason(stats.skipped[ids[k]], fault, href, case["root"])
    assert took <= TIMEOUT + MARGIN, f"the tile took {took:.1f} s"
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
        items = local.search(Search(), _footprint(t))
        reads = [_local_reads(tile_reader, it, t) for it in items]
        if len(items) < 2 or reads[0] is None:
            continue
        data, valid = naive_mosaic(reads, score, ["cld"], out, _days(items))
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
